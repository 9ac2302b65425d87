-- Every circuit transition and manual action; idempotent per key and generation.

CREATE TABLE guard.breaker_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key text NOT NULL,
    generation bigint NOT NULL,
    from_state text NOT NULL,
    to_state text NOT NULL,
    reason text NOT NULL,
    failure_count integer NOT NULL DEFAULT 0,
    success_count integer NOT NULL DEFAULT 0,
    actor text,
    host text NOT NULL,
    pid integer NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT breaker_events_key_generation_key UNIQUE (key, generation)
);

CREATE INDEX breaker_events_occurred_at_idx ON guard.breaker_events (occurred_at);

-- guard_breaker_recovery_seconds (`guard metrics`) and guard.fold_metric_totals read the
-- recoveries recorded since their watermark.
CREATE INDEX breaker_events_recovered_at_idx ON guard.breaker_events (recorded_at)
WHERE from_state = 'half_open' AND to_state = 'closed';
