-- One batch of a detection pass over the whole history (`guard check --all`): every enabled check
-- over the rows observed in [since, until), opening and bumping alerts exactly as run_detection
-- does. It never resolves: a batch cannot tell a fixed row from one outside its range, so the
-- caller ends with an ordinary windowed pass (guard.detect()), which re-checks every open alert.
-- Batches keep each transaction, and the detection lock it holds, short on a large history.
-- Its alerts carry no observed_at: a row of last year found today is history being read, not the
-- detection latency guard.kpis measures.
CREATE OR REPLACE FUNCTION guard.detect_between(since timestamptz, until timestamptz)
RETURNS TABLE (
    check_id text, rule_id text, offending integer, opened integer, repeated integer
)
LANGUAGE plpgsql
SET search_path = pg_catalog
SET max_parallel_workers_per_gather = 0
SET jit = off
AS $$
DECLARE
    detection_check record;
    findings guard.finding[];
    silence interval := guard.alert_silence();
    open_alerts bigint;
    superseded integer;
BEGIN
    IF since IS NULL OR until IS NULL OR since >= until THEN
        RAISE EXCEPTION 'detect_between needs since < until (got % and %)', since, until
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection', 0));
    -- As in run_detection: the planner's estimate of the open alerts is checked before each
    -- check's statements (a batch over history can open thousands).
    SELECT count(*) INTO open_alerts FROM guard.alerts AS a WHERE a.status = 'open';
    FOR detection_check IN
        SELECT k.id, k.rule_id, k.check_view, k.description
        FROM guard.checks AS k
        WHERE k.enabled AND k.check_view IS NOT NULL
        ORDER BY k.id
    LOOP
        PERFORM guard.analyze_alerts_if_stale(open_alerts);
        EXECUTE format(
            $query$
            SELECT coalesce(array_agg(ROW(
                v.check_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                v.observed_at, v.detail
            )::guard.finding), '{}')
            FROM guard.%1$I AS v
            WHERE v.observed_at >= $1 AND v.observed_at < $2
            $query$,
            detection_check.check_view
        ) INTO findings USING since, until;

        check_id := detection_check.id;
        rule_id := detection_check.rule_id;
        offending := cardinality(findings);

        -- No observed_at (see above).
        SELECT r.opened, r.repeated, r.superseded INTO opened, repeated, superseded
        FROM guard.record_findings(findings, detection_check.description, silence, FALSE) AS r;
        open_alerts := open_alerts + opened - superseded;
        RETURN NEXT;
    END LOOP;
END;
$$;
