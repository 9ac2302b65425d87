-- The last recorded state of one circuit, for a breaker that found the circuit missing from
-- Redis (evicted by a shared Redis under maxmemory, a flushed or replaced Redis): it seeds Redis
-- back from this row before deciding, so an operator's trip (forced_open), force-close or
-- disable outlives the loss of the live copy. The generation is the highest the circuit has in
-- the state row or the event log, so a restored circuit never reuses a recorded generation.
-- No row: PostgreSQL has never recorded the circuit (it is new).
-- SECURITY DEFINER: the application role runs the breaker but may not read the breaker tables.
-- Breaker state is global (a circuit belongs to no tenant), so there is no tenant check.
CREATE OR REPLACE FUNCTION guard.breaker_restore_state(circuit_key text)
RETURNS TABLE (state text, generation bigint, opened_at timestamptz)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT
        s.state,
        greatest(
            s.generation,
            (SELECT max(e.generation) FROM guard.breaker_events AS e WHERE e.key = s.key)
        ),
        s.opened_at
    FROM guard.breaker_state AS s
    WHERE s.key = circuit_key;
$$;
