-- One batch of the end of `guard check --all`: re-check the entity of every open alert whose id is
-- in (after_id, up_to_id] against its check's view and resolve the alerts whose row no longer
-- offends (resolution fixed). The batches of detect_between open and bump; this resolves, a range
-- of alert ids at a time, so no transaction re-checks millions of open alerts at once. Each
-- check's view is read for exactly the batch's entities (entity_id = ANY: its primary key), so
-- the plan does not depend on how fresh the statistics of guard.alerts are.
-- Each check runs isolated, as in guard.run_checks: one that raises, or that the statement
-- timeout cuts (the checks after it are then skipped), resolves nothing and raises check_failed
-- (phone numbers masked in its error); the others' work is kept.
CREATE OR REPLACE FUNCTION guard.recheck_alerts_between(after_id bigint, up_to_id bigint)
RETURNS TABLE (check_id text, rule_id text, rechecked integer, resolved integer)
LANGUAGE plpgsql
SET search_path = pg_catalog
SET max_parallel_workers_per_gather = 0
SET jit = off
AS $$
DECLARE
    detection_check record;
    -- the advisory locks held before the first own check was read (guard.read_own_check)
    own_locks text[];
    batch_checks text[];
    batch_ids bigint[];
    batch_fingerprints text[];
    open_ids bigint[];
    open_fingerprints text[];
    still_offending text[];
    status text;
    error text;
    failed_state text;
    check_started timestamptz;
    cut_during text;
BEGIN
    IF after_id IS NULL OR up_to_id IS NULL OR after_id >= up_to_id THEN
        RAISE EXCEPTION 'recheck_alerts_between needs after_id < up_to_id (got % and %)', after_id, up_to_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection', 0));
    SELECT
        coalesce(array_agg(a.check_id), '{}'),
        coalesce(array_agg(a.entity_id), '{}'),
        coalesce(array_agg(a.fingerprint), '{}')
    INTO batch_checks, batch_ids, batch_fingerprints
    FROM guard.alerts AS a
    WHERE a.id > after_id AND a.id <= up_to_id AND a.status = 'open';
    FOR detection_check IN
        SELECT k.id, k.rule_id, k.check_view
        FROM guard.checks AS k
        WHERE k.enabled AND k.check_view IS NOT NULL
        ORDER BY k.id
    LOOP
        SELECT coalesce(array_agg(b.entity_id), '{}'), coalesce(array_agg(b.fingerprint), '{}')
        INTO open_ids, open_fingerprints
        FROM unnest(batch_checks, batch_ids, batch_fingerprints) AS b (check_id, entity_id, fingerprint)
        WHERE b.check_id = detection_check.id;

        check_id := detection_check.id;
        rule_id := detection_check.rule_id;
        rechecked := cardinality(open_ids);
        resolved := 0;
        status := 'ok';
        error := NULL;
        IF rechecked > 0 AND cut_during IS NULL THEN
            check_started := clock_timestamp();
            -- the session's advisory locks before its first own check (released after the last)
            IF detection_check.check_view <> ALL(guard.shipped_check_views()) AND own_locks IS NULL THEN
                own_locks := guard.advisory_locks_held();
            END IF;
            BEGIN
                EXECUTE format(
                    $query$
                    SELECT coalesce(array_agg(v.fingerprint), '{}')
                    FROM (
                        SELECT k.check_id || ':' || k.entity_type || ':' || k.entity_id AS fingerprint
                        FROM %1$s AS k
                        WHERE k.entity_id = ANY($1)
                    ) AS v
                    WHERE v.fingerprint = ANY($2)
                    $query$,
                    -- a DBA's own check is read in its sandbox (guard.read_own_check)
                    CASE WHEN detection_check.check_view = ANY(guard.shipped_check_views())
                        THEN format('guard.%I', detection_check.check_view)
                        ELSE format('guard.read_own_check(%L, NULL, NULL, NULL, $1)', detection_check.check_view) END
                ) INTO still_offending USING open_ids, open_fingerprints;

                UPDATE guard.alerts AS a
                SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
                WHERE
                    a.status = 'open'
                    AND a.fingerprint = ANY(open_fingerprints)
                    AND NOT a.fingerprint = ANY(still_offending);
                GET DIAGNOSTICS resolved = ROW_COUNT;
            EXCEPTION WHEN query_canceled OR OTHERS THEN
                GET STACKED DIAGNOSTICS error = MESSAGE_TEXT, failed_state = RETURNED_SQLSTATE;
                IF failed_state = '57014' AND NOT guard.statement_timed_out() THEN
                    RAISE;
                END IF;
                status := 'failed';
            END;
            IF status <> 'ok' THEN
                resolved := 0;
                IF failed_state = '57014' THEN
                    cut_during := detection_check.id;
                END IF;
                PERFORM guard.report_check_failure(
                    detection_check.id, failed_state, error, check_started, 're-checking open alerts',
                    jsonb_build_object('in', 'history')
                );
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
    IF own_locks IS NOT NULL THEN
        PERFORM guard.release_advisory_locks_since(own_locks);
    END IF;
END;
$$;
