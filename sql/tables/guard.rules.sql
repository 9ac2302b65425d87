-- The rule registry: one row per rule, the one id a rule has everywhere (alerts, corrections,
-- metrics, reports): an invariant's rule (I1_call_direction ... I7_booking_failures) or the
-- operational rule job_health. stage says how far the rule is enforced. How a breach of a rule
-- is found is its checks (guard.checks). company_overrides counts the companies that override
-- the rule's stage or mode (guard.rule_company_stages, kept by its triggers), so that the
-- commit-time check learns from the row it reads anyway that none does.

CREATE TABLE guard.rules (
    id text PRIMARY KEY,
    invariant text CHECK (invariant ~ '^I[0-9]+$'),
    severity text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    description text NOT NULL,
    remedy text NOT NULL CHECK (remedy IN ('auto_fix', 'review', 'report')),
    mode text NOT NULL DEFAULT 'correct' CHECK (mode IN ('correct', 'reject')),
    stage text NOT NULL DEFAULT 'observe' CHECK (stage IN ('observe', 'correct', 'enforce')),
    constraint_names text[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT TRUE,
    updated_at timestamptz NOT NULL DEFAULT now(),
    likely_cause text,
    action text,
    company_overrides integer NOT NULL DEFAULT 0
);
