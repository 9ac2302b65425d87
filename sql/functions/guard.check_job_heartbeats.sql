-- The missed-run check, called after every job run: an enabled job without a success within
-- twice its interval raises (or bumps) a job_missed alert; a job that is no longer overdue, or
-- was disabled, has its job_missed alert resolved ('fixed'), and so does a job that was deleted
-- ('superseded': nothing will ever run it again, and its alert would otherwise stay open). On a
-- logical subscriber of the booking tables the jobs guard.run_job skips there are not checked.
-- Returns the number of overdue jobs, or NULL when another session's check holds the lock (see
-- below) and this one did nothing.
--
-- One session at a time, and nobody waits for it. Every run of every job ends here, and the
-- job_missed alerts are shared: two runs writing the same alert would meet on its row or on
-- alerts_one_open_per_fingerprint, and even INSERT ... ON CONFLICT waits there for the other
-- transaction to end, so one job's run would wait for a different job's commit. The check
-- therefore takes a transaction-level advisory lock without waiting and skips when another
-- session holds it: that session's check writes the same alerts and commits them with its run.
-- Held until commit, the lock also means every job_missed write it makes is committed before
-- the next check can look. (A run that skips leaves its own job_missed alert to that session,
-- which may not see this run's success yet: then the next check resolves it.)
CREATE OR REPLACE FUNCTION guard.check_job_heartbeats()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    late record;
    overdue_count integer := 0;
    skipped_here text[] := '{}'::text[];
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('booking-guard:job-heartbeats', 0)) THEN
        RETURN NULL;
    END IF;
    -- the jobs guard.run_job skips on a logical subscriber of the booking tables never succeed
    -- there, by design: not missed
    IF guard.booking_subscription() IS NOT NULL THEN
        skipped_here := ARRAY['detect', 'sweep', 'reconcile']::text[];
    END IF;
    FOR late IN
        SELECT s.job_name, s.interval_seconds, s.last_success_at
        FROM guard.job_status AS s
        WHERE s.overdue AND NOT (s.job_name = ANY (skipped_here))
        ORDER BY s.job_name
    LOOP
        PERFORM guard.open_job_alert(
            'job_missed',
            late.job_name,
            format(
                'job %s has not succeeded within %s s (twice its interval); last success: %s',
                late.job_name,
                2 * late.interval_seconds,
                coalesce(late.last_success_at::text, 'never')
            ),
            jsonb_build_object('last_success_at', late.last_success_at)
        );
        overdue_count := overdue_count + 1;
    END LOOP;
    UPDATE guard.alerts AS a
    SET
        status = 'resolved',
        resolved_at = now(),
        resolution = CASE
            WHEN EXISTS (
                SELECT FROM guard.jobs AS j
                WHERE a.fingerprint = format('job_missed:job:%s', j.name)
            ) THEN 'fixed'
            ELSE 'superseded'
        END
    WHERE
        a.check_id = 'job_missed'
        AND a.status = 'open'
        AND NOT EXISTS (
            SELECT FROM guard.job_status AS s
            WHERE
                a.fingerprint = format('job_missed:job:%s', s.job_name)
                AND s.overdue
                AND NOT (s.job_name = ANY (skipped_here))
        );
    RETURN overdue_count;
END;
$$;
