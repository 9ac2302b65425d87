-- The check registry: one row per way a breach of a rule is found, each belonging to one rule.
-- A check with a check_view is run by detection (a view under sql/checks returning the
-- offending rows); one without is raised by the code that sees the breach (a rolled-back booking,
-- a failed or missed job). An alert names its check (guard.alerts.check_id, the Alertmanager
-- alertname) and through it its rule.

CREATE TABLE guard.checks (
    id text PRIMARY KEY,
    rule_id text NOT NULL REFERENCES guard.rules (id),
    severity text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    description text NOT NULL,
    remedy text NOT NULL CHECK (remedy IN ('auto_fix', 'review', 'report')),
    check_view text,
    enabled boolean NOT NULL DEFAULT TRUE,
    updated_at timestamptz NOT NULL DEFAULT now(),
    warn_above numeric CHECK (warn_above >= 0),
    error_above numeric CHECK (error_above >= 0),
    threshold_unit text NOT NULL DEFAULT 'count' CHECK (threshold_unit IN ('count', 'rate_pct')),
    -- the sweep job (guard.sweep_checks) also reads the whole view: rows that go bad long after
    -- they were written, which the detection window never sees again
    sweep boolean NOT NULL DEFAULT FALSE,
    CONSTRAINT checks_thresholds_ordered CHECK (warn_above <= error_above)
);

CREATE INDEX checks_rule_id_idx ON guard.checks (rule_id);
