-- The retention job: deletes resolved alerts (with their deliveries and resolved notices), breaker
-- events, validation metrics, detection runs, the review notices of closed items, sent report
-- deliveries, the record of sent digests and job runs older than their retention setting, and
-- pg_cron's run details of Booking Guard's own jobs (cron.job_run_details is never cleaned by
-- pg_cron) when pg_cron lives in this database and the role running retention may: USAGE on schema
-- cron, SELECT on cron.job and DELETE on cron.job_run_details (pg_cron grants the two tables to
-- PUBLIC, the schema to no one). The role pg_cron runs the jobs as has them (scheduling needed
-- them); a login of the owner role running `guard jobs run` may not: then that part is skipped,
-- with a notice, and its row says deleted NULL (not cleaned) instead of "permission denied for
-- schema cron" failing the whole run.
-- The newest run and the newest success of every job are kept (they are its heartbeat).
-- First the rows the counters of `guard metrics` count are folded into guard.metric_totals
-- (guard.fold_metric_totals), and alerts and validation metrics are deleted only before its
-- watermark: no row leaves uncounted, so the counters never drop.
CREATE OR REPLACE FUNCTION guard.apply_retention()
RETURNS TABLE (target text, deleted bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    cron_schema text;
    job_runs_cutoff timestamptz
        := now() - make_interval(days => guard.setting('retention_job_runs_days')::integer);
    counted_before timestamptz;
BEGIN
    PERFORM guard.fold_metric_totals();
    SELECT w.folded_before INTO counted_before FROM guard.metric_watermark AS w;

    target := 'guard.alerts';
    DELETE FROM guard.alerts AS a
    WHERE
        a.status = 'resolved'
        AND a.resolved_at
        < now() - make_interval(days => guard.setting('retention_alerts_days')::integer)
        AND a.first_seen_at < counted_before;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN NEXT;

    -- An alert's deliveries and resolved notices go with it (no foreign key: alerts stay
    -- partitionable); enqueue_resolved_notices finds nothing to announce for a deleted alert.
    target := 'guard.deliveries (alerts)';
    DELETE FROM guard.deliveries AS d
    WHERE
        d.kind = 'alert'
        AND NOT EXISTS (SELECT FROM guard.alerts AS a WHERE a.id = d.subject);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN NEXT;

    target := 'guard.deliveries (resolved notices)';
    DELETE FROM guard.deliveries AS n
    WHERE
        n.kind = 'alert_resolved'
        AND NOT EXISTS (SELECT FROM guard.alerts AS a WHERE a.id = n.subject);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN NEXT;

    target := 'guard.breaker_events';
    DELETE FROM guard.breaker_events AS e
    WHERE
        e.occurred_at
        < now() - make_interval(days => guard.setting('retention_breaker_events_days')::integer);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN NEXT;

    target := 'guard.validation_metrics';
    DELETE FROM guard.validation_metrics AS m
    WHERE
        m.measured_at < now() - make_interval(
            days => guard.setting('retention_validation_metrics_days')::integer
        )
        AND m.measured_at < counted_before;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN NEXT;

    target := 'guard.detection_runs';
    DELETE FROM guard.detection_runs AS d
    WHERE
        d.pass_started_at < now() - make_interval(
            days => guard.setting('retention_detection_runs_days')::integer
        );
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN NEXT;

    -- A notice is kept while its item is open or claimed (enqueue_review_notices would announce
    -- an open item again); once the item is closed, for as long as resolved alerts are.
    target := 'guard.deliveries (review notices)';
    DELETE FROM guard.deliveries AS n
    WHERE
        n.kind = 'review_notice'
        AND n.created_at
        < now() - make_interval(days => guard.setting('retention_alerts_days')::integer)
        AND NOT EXISTS (
            SELECT FROM guard.review_items AS r
            WHERE r.id = n.subject AND r.status IN ('open', 'claimed')
        );
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN NEXT;

    -- A report's delivery is kept for as long as resolved alerts, and never while its day is
    -- one guard.enqueue_report_deliveries still looks at (the last 7): deleted sooner, the
    -- report would be sent again.
    target := 'guard.deliveries (reports)';
    DELETE FROM guard.deliveries AS r
    WHERE
        r.kind = 'report'
        AND r.status = 'delivered'
        AND r.subject < to_char(
            (now() AT TIME ZONE 'UTC')::date
            - greatest(guard.setting('retention_alerts_days')::integer, 8),
            'YYYYMMDD'
        )::bigint;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN NEXT;

    -- the record of a digest sent (its alerts' own deliveries say what was delivered)
    target := 'guard.alert_digests';
    DELETE FROM guard.alert_digests AS g
    WHERE
        g.sent_at
        < now() - make_interval(days => guard.setting('retention_alerts_days')::integer);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN NEXT;

    target := 'guard.job_runs';
    DELETE FROM guard.job_runs AS r
    WHERE
        r.finished_at < job_runs_cutoff
        -- not the job's newest run
        AND EXISTS (
            SELECT FROM guard.job_runs AS k
            WHERE k.job_name = r.job_name AND (k.started_at, k.id) > (r.started_at, r.id)
        )
        -- and not its newest success
        AND (
            r.status <> 'succeeded'
            OR EXISTS (
                SELECT FROM guard.job_runs AS k
                WHERE
                    k.job_name = r.job_name
                    AND k.status = 'succeeded'
                    AND (k.started_at, k.id) > (r.started_at, r.id)
            )
        );
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN NEXT;

    -- pg_cron keeps its objects in schema cron, whatever its extnamespace says
    SELECT n.nspname INTO cron_schema
    FROM pg_catalog.pg_namespace AS n
    WHERE
        n.nspname = 'cron'
        AND EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pg_cron');
    IF FOUND THEN
        target := format('%s.job_run_details', cron_schema);
        -- by oid: a name in a schema the role may not use cannot even be looked up
        IF NOT (
            has_schema_privilege(cron_schema, 'USAGE')
            AND coalesce((
                SELECT bool_and(CASE c.relname
                    WHEN 'job' THEN has_table_privilege(c.oid, 'SELECT')
                    ELSE has_table_privilege(c.oid, 'DELETE')
                END) AND count(*) = 2
                FROM pg_catalog.pg_class AS c
                WHERE
                    c.relnamespace = cron_schema::regnamespace
                    AND c.relname IN ('job', 'job_run_details')
            ), FALSE)
        ) THEN
            RAISE NOTICE 'retention: %.job_run_details not cleaned: role % may not (it needs USAGE on schema %, SELECT on %.job, DELETE on %.job_run_details)',
                cron_schema, current_user, cron_schema, cron_schema, cron_schema
                USING HINT = 'pg_cron''s own runs of the job clean it; or GRANT USAGE ON SCHEMA '
                || cron_schema || ' TO ' || quote_ident(current_user);
            deleted := NULL;
            RETURN NEXT;
            RETURN;
        END IF;
        EXECUTE format(
            'DELETE FROM %1$I.job_run_details AS d
            WHERE coalesce(d.end_time, d.start_time) < $1
            AND d.jobid IN (SELECT c.jobid FROM %1$I.job AS c WHERE c.jobname LIKE $2)',
            cron_schema
        )
        USING job_runs_cutoff, 'guard\_%';
        GET DIAGNOSTICS deleted = ROW_COUNT;
        RETURN NEXT;
    END IF;
END;
$$;
