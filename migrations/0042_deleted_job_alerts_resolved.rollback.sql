-- Rollback of 0042_deleted_job_alerts_resolved: the definitions the migrations before it built.

CREATE OR REPLACE FUNCTION guard.check_job_heartbeats()
RETURNS integer
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
AS $function$
DECLARE
    late record;
    overdue_count integer := 0;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('booking-guard:job-heartbeats', 0)) THEN
        RETURN NULL;
    END IF;
    FOR late IN
        SELECT s.job_name, s.interval_seconds, s.last_success_at
        FROM guard.job_status AS s
        WHERE s.overdue
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
    SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
    FROM guard.job_status AS s
    WHERE
        a.check_id = 'job_missed'
        AND a.status = 'open'
        AND a.fingerprint = format('job_missed:job:%s', s.job_name)
        AND NOT s.overdue;
    RETURN overdue_count;
END;
$function$;
