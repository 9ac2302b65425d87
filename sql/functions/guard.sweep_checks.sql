-- The sweep job: every enabled check marked sweep (guard.checks.sweep) over its whole view, not
-- the detection window, opening and bumping alerts as a detection pass does
-- (guard.record_findings). A detection pass reads the rows observed in its window (by when they
-- were created) and re-checks the rows of open alerts; a row an application updates long after
-- it was written (an appointment cancelled as 'canceled' days after it was booked) is in neither,
-- and only a read of the whole view finds it. It never resolves: the next detection pass
-- probes the open alerts. Its alerts carry no observed_at: when the row went bad is not
-- known, so they are no sample of detection latency (guard.kpis).
-- It takes no detection lock, so that no other job waits for it (docs/jobs.md): the unique index
-- on open fingerprints keeps one open alert whichever writer wins, and a detection pass resolves
-- only the alerts that were open when it read them. Where a detection pass holds the alerts a
-- check would write, the sweep waits at most check_call_lock_timeout_ms and leaves that check to
-- its next run (its row says 0 opened, 0 repeated).
-- A sweep of unknown_value reads calls and appointments whole, once an hour: 0.3-0.5 s at a
-- million calls (docs/invariants.md, "Known values").
-- Each check runs isolated, as in guard.run_checks: one that raises, or that a statement timeout
-- cuts (the checks after it are then skipped), returns offending NULL and raises check_failed
-- (details "in": "sweep"; the next sweep that runs it through resolves that alert); the others'
-- work is kept.
CREATE OR REPLACE FUNCTION guard.sweep_checks()
RETURNS TABLE (
    check_id text, rule_id text, offending integer, opened integer, repeated integer
)
LANGUAGE plpgsql
SET search_path = pg_catalog
SET max_parallel_workers_per_gather = 0
SET jit = off
AS $$
DECLARE
    swept record;
    -- the advisory locks held before the first own check was read (guard.read_own_check)
    own_locks text[];
    findings guard.finding[];
    silence interval := guard.alert_silence();
    open_alerts bigint;
    superseded integer;
    caller_lock_timeout text := current_setting('lock_timeout');
    write_lock_timeout text := (guard.setting('check_call_lock_timeout_ms') #>> '{}') || 'ms';
    status text;
    error text;
    stage text;
    failed_state text;
    check_started timestamptz;
    cut_during text;
    checks_run integer := 0;
    checks_skipped integer := 0;
BEGIN
    -- As in run_detection: the planner's estimate of the open alerts is checked before each
    -- check's statements.
    SELECT count(*) INTO open_alerts FROM guard.alerts AS a WHERE a.status = 'open';
    FOR swept IN
        SELECT k.id, k.rule_id, k.check_view, k.description
        FROM guard.checks AS k
        WHERE k.enabled AND k.sweep AND k.check_view IS NOT NULL
        ORDER BY k.id
    LOOP
        check_id := swept.id;
        rule_id := swept.rule_id;
        offending := NULL;
        opened := 0;
        repeated := 0;
        superseded := 0;
        status := 'ok';
        error := NULL;
        IF cut_during IS NOT NULL THEN
            checks_skipped := checks_skipped + 1;
            RETURN NEXT;
            CONTINUE;
        END IF;
        check_started := clock_timestamp();
        stage := 'view';
        -- the session's advisory locks before its first own check (released after the last)
        IF swept.check_view <> ALL(guard.shipped_check_views()) AND own_locks IS NULL THEN
            own_locks := guard.advisory_locks_held();
        END IF;
        BEGIN
            PERFORM guard.analyze_alerts_if_stale(open_alerts);
            EXECUTE format(
                $query$
                SELECT coalesce(array_agg(ROW(
                    v.check_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                    v.observed_at, v.detail
                )::guard.finding), '{}')
                FROM %1$s AS v
                $query$,
                -- a DBA's own check is read in its sandbox (guard.read_own_check)
                CASE WHEN swept.check_view = ANY(guard.shipped_check_views())
                    THEN format('guard.%I', swept.check_view)
                    ELSE format('guard.read_own_check(%L, NULL, NULL, NULL, NULL)', swept.check_view) END
            ) INTO findings;
            offending := cardinality(findings);
            stage := 'alerts';
            PERFORM set_config('lock_timeout', write_lock_timeout, TRUE);
            SELECT r.opened, r.repeated, r.superseded INTO opened, repeated, superseded
            FROM guard.record_findings(findings, swept.description, silence, FALSE) AS r;
        EXCEPTION
            WHEN lock_not_available THEN
                IF stage = 'alerts' THEN
                    opened := 0;
                    repeated := 0;
                    superseded := 0;
                ELSE
                    status := 'failed';
                    GET STACKED DIAGNOSTICS error = MESSAGE_TEXT, failed_state = RETURNED_SQLSTATE;
                END IF;
            WHEN query_canceled OR OTHERS THEN
                GET STACKED DIAGNOSTICS error = MESSAGE_TEXT, failed_state = RETURNED_SQLSTATE;
                IF failed_state = '57014' AND NOT guard.statement_timed_out() THEN
                    RAISE;
                END IF;
                status := 'failed';
        END;
        PERFORM set_config('lock_timeout', caller_lock_timeout, TRUE);
        IF status <> 'ok' THEN
            offending := NULL;
            opened := 0;
            repeated := 0;
            IF failed_state = '57014' THEN
                cut_during := swept.id;
            END IF;
            error := guard.report_check_failure(
                swept.id, failed_state, error, check_started, 'in the sweep',
                jsonb_build_object('in', 'sweep')
            );
        ELSE
            checks_run := checks_run + 1;
            UPDATE guard.alerts AS a
            SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
            WHERE
                a.status = 'open'
                AND a.fingerprint = 'check_failed:check:' || swept.id
                AND a.details ->> 'in' = 'sweep';
            open_alerts := open_alerts + opened - superseded;
        END IF;
        RETURN NEXT;
    END LOOP;
    IF own_locks IS NOT NULL THEN
        PERFORM guard.release_advisory_locks_since(own_locks);
    END IF;
    IF cut_during IS NOT NULL THEN
        -- for guard.run_job, as a cut detection pass does: the sweep job's run failed
        PERFORM set_config(
            'booking_guard.checks_cut',
            format(
                'check %s was cut; the %s checks run before it are kept, %s after it skipped',
                cut_during, checks_run, checks_skipped
            ),
            TRUE
        );
    END IF;
END;
$$;
