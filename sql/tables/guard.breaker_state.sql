-- Last known state of each circuit, written behind by the breaker (Redis is the live copy).

CREATE TABLE guard.breaker_state (
    key text PRIMARY KEY,
    state text NOT NULL CHECK (
        state IN ('closed', 'open', 'half_open', 'forced_open', 'forced_closed', 'disabled')
    ),
    generation bigint NOT NULL,
    failure_count integer NOT NULL DEFAULT 0,
    success_count integer NOT NULL DEFAULT 0,
    opened_at timestamptz,
    changed_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
