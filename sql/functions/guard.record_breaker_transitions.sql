-- Record circuit breaker transitions: the breaker's PostgreSQL write-behind (and `guard breaker`
-- manual actions) send a batch as a JSON array of objects with key, generation, from_state,
-- to_state, reason, failure_count, success_count, actor, host, pid, occurred_at and opened_at.
-- Each becomes a row of guard.breaker_events (skipped if that key and generation is recorded
-- already), and the newest of each key becomes guard.breaker_state (which only moves to a newer
-- generation), so a retried batch or two writers never duplicate or regress anything.
-- SECURITY DEFINER: the application role runs the breaker but may not write the breaker tables
-- directly. Breaker state is global (a circuit belongs to no tenant), so there is no tenant
-- check; the input is checked instead: key syntax, known states, and only values a breaker
-- can write (generations from 1 to 10^12, whole counts from 0, times from 1970 to 2286, the
-- writer's host and pid: the CHECKs
-- breaker_state_values_in_range and breaker_events_values_in_range, guard/breaker/stored.py), so
-- that no login may record a state the breaker cannot restore; a batch with one such
-- transition is refused whole (invalid_parameter_value) and records nothing.
-- A state row outside those bounds (written before the CHECKs) is replaced by any new state.
-- Returns the number of events newly recorded.
CREATE OR REPLACE FUNCTION guard.record_breaker_transitions(transitions jsonb)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    states CONSTANT text[] := ARRAY[
        'closed', 'open', 'half_open', 'forced_open', 'forced_closed', 'disabled'
    ];
    max_generation CONSTANT bigint := 1000000000000;
    earliest CONSTANT timestamptz := timestamptz '1970-01-01 00:00:00+00';
    latest CONSTANT timestamptz := timestamptz '2286-11-20 17:46:40+00';
    bad record;
    recorded integer;
BEGIN
    IF transitions IS NULL OR jsonb_typeof(transitions) <> 'array' THEN
        RAISE EXCEPTION 'guard.record_breaker_transitions: expected a JSON array of transitions'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM jsonb_array_elements(transitions) AS e WHERE jsonb_typeof(e) <> 'object') THEN
        RAISE EXCEPTION 'guard.record_breaker_transitions: every transition must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- numbers as numeric first: a generation beyond bigint is refused as invalid like any
    -- other, not with a cast error
    SELECT t.key, t.generation, t.from_state, t.to_state INTO bad
    FROM jsonb_to_recordset(transitions) AS t (
        key text, generation numeric, from_state text, to_state text, failure_count numeric,
        success_count numeric, host text, pid numeric, occurred_at timestamptz,
        opened_at timestamptz
    )
    WHERE
        t.key IS NULL OR t.key !~ '^[A-Za-z0-9_.:/-]{1,200}$'
        OR t.generation IS NULL OR t.generation NOT BETWEEN 1 AND max_generation
        OR t.generation <> trunc(t.generation)
        OR t.from_state IS NULL OR NOT t.from_state = ANY (states)
        OR t.to_state IS NULL OR NOT t.to_state = ANY (states)
        OR t.failure_count NOT BETWEEN 0 AND 2147483647
        OR t.failure_count <> trunc(t.failure_count)
        OR t.success_count NOT BETWEEN 0 AND 2147483647
        OR t.success_count <> trunc(t.success_count)
        OR t.host IS NULL
        OR t.pid IS NULL OR t.pid NOT BETWEEN 0 AND 2147483647 OR t.pid <> trunc(t.pid)
        OR t.occurred_at IS NULL OR t.occurred_at NOT BETWEEN earliest AND latest
        OR t.opened_at NOT BETWEEN earliest AND latest
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'guard.record_breaker_transitions: invalid transition (key %, generation %, % -> %)',
            bad.key, bad.generation, bad.from_state, bad.to_state
            USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A breaker writes generations from 1 to 1000000000000, whole counts from 0, '
            'times from 1970 to 2286, and the host and pid that wrote them.';
    END IF;

    WITH t AS (
        SELECT *
        FROM jsonb_to_recordset(transitions) AS r (
            key text, generation bigint, from_state text, to_state text, reason text,
            failure_count integer, success_count integer, actor text, host text, pid integer,
            occurred_at timestamptz, opened_at timestamptz
        )
    ),

    new_events AS (
        INSERT INTO guard.breaker_events AS e (
            key, generation, from_state, to_state, reason, failure_count, success_count,
            actor, host, pid, occurred_at
        )
        SELECT
            t.key, t.generation, t.from_state, t.to_state, coalesce(t.reason, '-'),
            coalesce(t.failure_count, 0), coalesce(t.success_count, 0), t.actor, t.host, t.pid,
            t.occurred_at
        FROM t
        ON CONFLICT ON CONSTRAINT breaker_events_key_generation_key DO NOTHING
        RETURNING e.id
    ),

    newest AS (
        INSERT INTO guard.breaker_state AS s (
            key, state, generation, failure_count, success_count, opened_at, changed_at,
            updated_at
        )
        SELECT DISTINCT ON (t.key)
            t.key, t.to_state, t.generation, coalesce(t.failure_count, 0),
            coalesce(t.success_count, 0), t.opened_at, t.occurred_at, now()
        FROM t
        ORDER BY t.key ASC, t.generation DESC
        ON CONFLICT (key) DO UPDATE SET
            state = excluded.state,
            generation = excluded.generation,
            failure_count = excluded.failure_count,
            success_count = excluded.success_count,
            opened_at = excluded.opened_at,
            changed_at = excluded.changed_at,
            updated_at = now()
        WHERE
            s.generation < excluded.generation
            OR s.generation NOT BETWEEN 1 AND max_generation
        RETURNING s.key
    )

    SELECT count(*) INTO recorded
    FROM new_events;
    RETURN recorded;
END;
$$;
