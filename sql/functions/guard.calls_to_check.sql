-- The calls of call_ids that guard.check_call's checks could act on, in id order: those a
-- shipped check's view finds (by call_id, as check_call reads it), those with an open alert of an
-- enabled check (check_call resolves it when fixed, refreshes it when not) and those with an
-- appointment (whose alerts check_call resolves with the call's). The detection queue's drain
-- (guard.drain_detection_queue) checks only these one by one: a call none of that concerns is
-- one whose check finds, opens, refreshes and resolves nothing. One statement for the whole
-- batch: most queued calls are calls that ended without a booking and are clean, and checked
-- one by one each paid every check's query, subtransaction and alert statements; a flood of
-- 2,000 commits a second outran the drain (bench/detection_latency.py).
-- Every call of call_ids is returned while an own check is enabled (its view runs in a sandbox
-- under check_call's budget, guard.run_checks: not read here), and when the statement fails (a
-- view that raises): check_call then reports the failure by the check, as before.
-- The statement is prepared once per session, named by its text (as check_call's are), so a new
-- set of enabled checks gets a new statement.
CREATE OR REPLACE FUNCTION guard.calls_to_check(call_ids bigint[])
RETURNS bigint[]
LANGUAGE plpgsql
SET search_path = pg_catalog
-- Index paths only, as in guard.run_checks: every read here is keyed by the calls' ids.
SET max_parallel_workers_per_gather = 0
SET jit = off
SET random_page_cost = 1.1
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    own_enabled boolean;
    found_by_views text;
    candidates_query text;
    candidates_statement text;
    candidates bigint[];
BEGIN
    IF cardinality(call_ids) = 0 THEN
        RETURN '{}'::bigint[];
    END IF;
    SELECT
        coalesce(bool_or(k.check_view <> ALL(guard.shipped_check_views())), FALSE),
        string_agg(
            format('SELECT v.call_id FROM guard.%I AS v WHERE v.call_id = ANY ($1)', k.check_view),
            ' UNION ALL ' ORDER BY k.id
        )
    INTO own_enabled, found_by_views
    FROM guard.checks AS k
    WHERE k.enabled AND k.check_view IS NOT NULL;
    IF own_enabled THEN
        RETURN call_ids;
    END IF;
    candidates_query := format(
        $query$
        SELECT coalesce(array_agg(DISTINCT f.call_id ORDER BY f.call_id), '{}')
        FROM (
            %s
            SELECT a.entity_id
            FROM guard.checks AS k
            INNER JOIN guard.alerts AS a ON a.check_id = k.id
            WHERE
                k.enabled AND k.check_view IS NOT NULL
                AND a.status = 'open' AND a.entity_type = 'call' AND a.entity_id = ANY ($1)
            UNION ALL
            SELECT ap.call_id FROM public.appointments AS ap WHERE ap.call_id = ANY ($1)
        ) AS f
        $query$,
        coalesce(found_by_views || ' UNION ALL', '')
    );
    candidates_statement := 'guard_calls_to_check_' || md5(candidates_query);
    BEGIN
        IF NOT EXISTS (
            SELECT FROM pg_prepared_statements AS p WHERE p.name = candidates_statement
        ) THEN
            EXECUTE format('PREPARE %I (bigint[]) AS %s', candidates_statement, candidates_query);
        END IF;
        EXECUTE format('EXECUTE %I(%L)', candidates_statement, call_ids) INTO candidates;
    EXCEPTION WHEN OTHERS THEN
        RETURN call_ids;
    END;
    RETURN candidates;
END;
$$;
