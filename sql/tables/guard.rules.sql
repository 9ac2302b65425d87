-- The rule registry: one row per invariant or detection rule, with its enforcement stage.

CREATE TABLE guard.rules (
    id text PRIMARY KEY,
    invariant text CHECK (invariant ~ '^I[0-9]+$'),
    severity text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    description text NOT NULL,
    remedy text NOT NULL CHECK (remedy IN ('auto_fix', 'review', 'report')),
    mode text NOT NULL DEFAULT 'correct' CHECK (mode IN ('correct', 'reject')),
    stage text NOT NULL DEFAULT 'observe' CHECK (stage IN ('observe', 'correct', 'enforce')),
    check_view text,
    constraint_names text[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT TRUE,
    updated_at timestamptz NOT NULL DEFAULT now()
);
