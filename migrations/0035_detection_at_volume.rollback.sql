-- 0035_detection_at_volume, rolled back: run_detection, run_job as 0031 left them, no
-- recheck_alerts_between, no detection_statement_timeout_ms and check_call_lock_timeout_ms.
-- Locks: none on tables (functions, and two rows of guard.settings).

DELETE FROM guard.settings
WHERE key IN ('detection_statement_timeout_ms', 'check_call_lock_timeout_ms');

CREATE OR REPLACE FUNCTION guard.run_job(job_name text)
RETURNS text
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
AS $function$
DECLARE
    job_command text;
    started timestamptz := clock_timestamp();
    finished timestamptz;
    run_status text := 'succeeded';
    run_error text;
    run_sqlstate text;
    elapsed_ms double precision;
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN format('%s: skipped, this server is a replica (jobs run on the primary)', job_name);
    END IF;
    SELECT j.command INTO job_command FROM guard.jobs AS j WHERE j.name = run_job.job_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown Booking Guard job "%"', job_name
            USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtextextended('booking-guard:job:' || job_name, 0)) THEN
        RETURN format('%s: skipped, already running in another session', job_name);
    END IF;

    BEGIN
        EXECUTE job_command;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS run_error = MESSAGE_TEXT, run_sqlstate = RETURNED_SQLSTATE;
        run_status := 'failed';
    END;

    finished := clock_timestamp();
    elapsed_ms := 1000 * extract(EPOCH FROM finished - started);
    INSERT INTO guard.job_runs (
        job_name, started_at, finished_at, status, error, sqlstate, duration_ms, runner
    ) VALUES (
        run_job.job_name, started, finished, run_status, run_error, run_sqlstate, elapsed_ms,
        coalesce(current_setting('application_name', TRUE), '')
    );

    IF run_status = 'failed' THEN
        PERFORM guard.open_job_alert(
            'job_failed',
            job_name,
            format('job %s failed: %s', job_name, run_error),
            jsonb_build_object('sqlstate', run_sqlstate, 'error', run_error, 'started_at', started)
        );
    ELSE
        PERFORM guard.resolve_job_alert('job_failed', job_name);
    END IF;
    PERFORM guard.check_job_heartbeats();

    IF run_status = 'failed' THEN
        RETURN format('%s: failed after %s ms: %s', job_name, round(elapsed_ms::numeric), run_error);
    END IF;
    RETURN format('%s: succeeded in %s ms', job_name, round(elapsed_ms::numeric));
END;
$function$;

CREATE OR REPLACE FUNCTION guard.run_detection(since timestamp with time zone, only_call bigint)
RETURNS TABLE (check_id text, rule_id text, offending integer, opened integer, repeated integer, resolved integer)
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
SET max_parallel_workers_per_gather TO '0'
SET jit TO 'off'
AS $function$
DECLARE
    detection_check record;
    findings guard.finding[];
    throttle interval := make_interval(
        secs => (guard.setting('alert_throttle_seconds') #>> '{}')::integer
    );
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection', 0));
    FOR detection_check IN
        SELECT k.id, k.rule_id, k.check_view, k.description
        FROM guard.checks AS k
        WHERE k.enabled AND k.check_view IS NOT NULL
        ORDER BY k.id
    LOOP
        IF only_call IS NULL THEN
            EXECUTE format(
                $query$
                SELECT coalesce(array_agg(ROW(
                    v.check_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                    v.observed_at, v.detail
                )::guard.finding), '{}')
                FROM (
                    SELECT w.* FROM guard.%1$I AS w WHERE w.observed_at >= $1
                    UNION
                    SELECT k.*
                    FROM guard.%1$I AS k
                    INNER JOIN guard.alerts AS a
                        ON a.entity_type = k.entity_type AND a.entity_id = k.entity_id
                    WHERE a.status = 'open' AND a.check_id = $2
                ) AS v
                $query$,
                detection_check.check_view
            ) INTO findings USING since, detection_check.id;
        ELSE
            EXECUTE format(
                $query$
                SELECT coalesce(array_agg(ROW(
                    v.check_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                    v.observed_at, v.detail
                )::guard.finding), '{}')
                FROM guard.%1$I AS v
                WHERE v.call_id = $1
                $query$,
                detection_check.check_view
            ) INTO findings USING only_call;
        END IF;

        check_id := detection_check.id;
        rule_id := detection_check.rule_id;
        offending := cardinality(findings);

        -- A repeat after a silence longer than the throttle window starts a new alert.
        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = a.last_seen_at, resolution = 'superseded'
        FROM unnest(findings) AS f
        WHERE
            a.status = 'open'
            AND a.fingerprint = f.check_id || ':' || f.entity_type || ':' || f.entity_id
            AND a.last_seen_at < now() - throttle;

        UPDATE guard.alerts AS a
        SET occurrences = a.occurrences + 1, last_seen_at = now()
        FROM unnest(findings) AS f
        WHERE a.status = 'open' AND a.fingerprint = f.check_id || ':' || f.entity_type || ':' || f.entity_id;
        GET DIAGNOSTICS repeated = ROW_COUNT;

        INSERT INTO guard.alerts (
            fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details
        )
        SELECT
            f.check_id || ':' || f.entity_type || ':' || f.entity_id,
            f.check_id,
            f.company_id,
            f.entity_type,
            f.entity_id,
            f.severity,
            detection_check.description,
            f.detail || CASE
                WHEN f.call_id IS NOT NULL AND f.entity_type <> 'call'
                    THEN jsonb_build_object('call_id', f.call_id)
                ELSE '{}'
            END
        FROM unnest(findings) AS f
        ON CONFLICT (fingerprint) WHERE status = 'open' DO NOTHING;
        GET DIAGNOSTICS opened = ROW_COUNT;

        -- Open alerts of this check in this scope whose row no longer offends: fixed.
        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
        WHERE
            a.status = 'open'
            AND a.check_id = detection_check.id
            AND (
                only_call IS NULL
                OR (a.entity_type = 'call' AND a.entity_id = only_call)
                OR (
                    a.entity_type = 'appointment'
                    AND a.entity_id IN (
                        SELECT ap.id FROM public.appointments AS ap WHERE ap.call_id = only_call
                    )
                )
            )
            AND a.fingerprint NOT IN (
                SELECT f.check_id || ':' || f.entity_type || ':' || f.entity_id FROM unnest(findings) AS f
            );
        GET DIAGNOSTICS resolved = ROW_COUNT;
        RETURN NEXT;
    END LOOP;
END;
$function$;

DROP FUNCTION guard.recheck_alerts_between(after_id bigint, up_to_id bigint);
