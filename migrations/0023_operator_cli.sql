-- `guard check --all`: detection over the whole history in batches of time, so that rows loaded
-- from an old system (older than detection_window_minutes) raise their alerts too, without one
-- long transaction holding the detection lock. guard.detect_between opens and bumps alerts per
-- batch; the CLI ends with guard.detect(), which resolves. Locks: CREATE FUNCTION only (catalog).

-- One batch of a detection pass over the whole history (`guard check --all`): every enabled rule
-- over the rows observed in [since, until), opening and bumping alerts exactly as run_detection
-- does. It never resolves: a batch cannot tell a fixed row from one outside its range, so the
-- caller ends with an ordinary windowed pass (guard.detect()), which re-checks every open alert.
-- Batches keep each transaction, and the detection lock it holds, short on a large history.
CREATE FUNCTION guard.detect_between(since timestamptz, until timestamptz)
RETURNS TABLE (rule_id text, offending integer, opened integer, repeated integer)
LANGUAGE plpgsql
SET search_path = pg_catalog
SET max_parallel_workers_per_gather = 0
SET jit = off
AS $$
DECLARE
    rule record;
    findings guard.finding[];
    throttle interval := make_interval(
        secs => (guard.setting('alert_throttle_seconds') #>> '{}')::integer
    );
BEGIN
    IF since IS NULL OR until IS NULL OR since >= until THEN
        RAISE EXCEPTION 'detect_between needs since < until (got % and %)', since, until
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection', 0));
    FOR rule IN
        SELECT r.id, r.check_view, r.description
        FROM guard.rules AS r
        WHERE r.enabled AND r.check_view IS NOT NULL
        ORDER BY r.id
    LOOP
        EXECUTE format(
            $query$
            SELECT coalesce(array_agg(ROW(
                v.rule_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                v.observed_at, v.detail
            )::guard.finding), '{}')
            FROM guard.%1$I AS v
            WHERE v.observed_at >= $1 AND v.observed_at < $2
            $query$,
            rule.check_view
        ) INTO findings USING since, until;

        rule_id := rule.id;
        offending := cardinality(findings);

        -- As in run_detection: a repeat after a silence longer than the throttle window starts
        -- a new alert.
        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = a.last_seen_at, resolution = 'superseded'
        FROM unnest(findings) AS f
        WHERE
            a.status = 'open'
            AND a.fingerprint = f.rule_id || ':' || f.entity_type || ':' || f.entity_id
            AND a.last_seen_at < now() - throttle;

        UPDATE guard.alerts AS a
        SET occurrences = a.occurrences + 1, last_seen_at = now()
        FROM unnest(findings) AS f
        WHERE a.status = 'open' AND a.fingerprint = f.rule_id || ':' || f.entity_type || ':' || f.entity_id;
        GET DIAGNOSTICS repeated = ROW_COUNT;

        INSERT INTO guard.alerts (
            fingerprint, rule_id, company_id, entity_type, entity_id, severity, message, details
        )
        SELECT
            f.rule_id || ':' || f.entity_type || ':' || f.entity_id,
            f.rule_id,
            f.company_id,
            f.entity_type,
            f.entity_id,
            f.severity,
            rule.description,
            f.detail || CASE
                WHEN f.call_id IS NOT NULL AND f.entity_type <> 'call'
                    THEN jsonb_build_object('call_id', f.call_id)
                ELSE '{}'
            END
        FROM unnest(findings) AS f
        ON CONFLICT (fingerprint) WHERE status = 'open' DO NOTHING;
        GET DIAGNOSTICS opened = ROW_COUNT;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- Ownership and privileges of every Booking Guard object (see guard.apply_grants): the new
-- function is the owner's alone, like run_detection. A DO block, not a SELECT: yoyo prints the
-- rows a migration's SELECT returns.
DO $$
BEGIN
    PERFORM guard.apply_grants();
END;
$$;
