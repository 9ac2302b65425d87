-- Reports and jobs: the daily report and the KPI view for BI, and the scheduled jobs
-- (detect, reconcile, review sweep, daily report, retention) with their heartbeats, failure and
-- missed-run alerts. The jobs are scheduled in pg_cron when it is installed in this database;
-- otherwise the notice says so and `guard jobs run` runs them from outside.

-- KPI targets that the design names without a number; the DBA tunes them like every setting.
INSERT INTO guard.settings (key, value, value_type, description) VALUES
(
    'target_breaker_recovery_seconds', '120', 'number',
    'KPI target: mean time from a circuit opening to closing again.'
),
('target_review_queue_max', '50', 'integer', 'KPI target: open review items at most.'),
(
    'target_false_positive_rate_pct', '5', 'number',
    'KPI target: review items dismissed as false positives, percent of closed items.'
);

-- Operational rules: raised and resolved by guard.run_job and guard.check_job_heartbeats (no
-- check view, no invariant). Their alerts name the job (entity_type job, no company).
INSERT INTO guard.rules (id, invariant, severity, description, remedy, mode, stage) VALUES
(
    'job_failed', NULL, 'high',
    'A scheduled Booking Guard job failed; its work was rolled back. Resolved by its next success.',
    'report', 'correct', 'observe'
),
(
    'job_missed', NULL, 'high',
    'A scheduled Booking Guard job has not succeeded within twice its interval.',
    'report', 'correct', 'observe'
);

-- Booking Guard's scheduled jobs: what runs, when (cron expression, UTC) and how often the
-- external runner and the missed-run check expect it (interval_seconds). pg_cron schedules the
-- enabled ones (guard.schedule_jobs); `guard jobs run` runs the same rows from outside.
CREATE TABLE guard.jobs (
    name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    schedule text NOT NULL,
    interval_seconds integer NOT NULL CHECK (interval_seconds >= 60),
    command text NOT NULL,
    description text NOT NULL,
    enabled boolean NOT NULL DEFAULT TRUE,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A changed or re-enabled job shows when (the missed-run check counts its grace from then).
CREATE TRIGGER jobs_touch_updated_at
BEFORE UPDATE ON guard.jobs
FOR EACH ROW EXECUTE FUNCTION guard.touch_updated_at();

-- The design's schedule (times in UTC). Commands are fixed SQL run by guard.run_job.
INSERT INTO guard.jobs (name, schedule, interval_seconds, command, description) VALUES
(
    'detect', '*/5 * * * *', 300, 'SELECT count(*) FROM guard.detect()',
    'One detection pass: every rule, alerts de-duplicated and auto-resolved.'
),
(
    'reconcile', '0 * * * *', 3600, 'SELECT count(*) FROM guard.reconcile()',
    'Correct what is safe, queue the rest for review (capped per run).'
),
(
    'review_sweep', '10 * * * *', 3600, 'SELECT guard.review_sweep()',
    'Resolve review items whose problem has gone.'
),
(
    'daily_report', '0 2 * * *', 86400,
    'SELECT count(*) FROM guard.daily_report(CAST(timezone(''UTC'', now()) AS date) - 1)',
    'Store yesterday''s report (UTC day) for every company.'
),
(
    'retention', '30 3 * * *', 86400, 'SELECT count(*) FROM guard.apply_retention()',
    'Delete resolved alerts, breaker events, validation metrics and job runs past retention.'
);

-- Heartbeats: one row per finished run of a job (succeeded or failed), written by guard.run_job
-- even when the job's own work rolled back. The newest row per job is its status; retention
-- keeps the newest run and the newest success of every job.
CREATE TABLE guard.job_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_name text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    status text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    error text,
    sqlstate text,
    duration_ms double precision NOT NULL CHECK (duration_ms >= 0),
    runner text NOT NULL DEFAULT '',
    CONSTRAINT job_runs_failure_has_error CHECK ((status = 'failed') = (error IS NOT NULL))
);

CREATE INDEX job_runs_job_started_idx ON guard.job_runs (job_name, started_at);

-- Each job with its heartbeat: the newest run, the newest success, when it is next due for an
-- external runner (last start + interval) and whether it is overdue (no success within twice its
-- interval, counted from the job's last change when it never succeeded since).
CREATE VIEW guard.job_status WITH (security_invoker = TRUE) AS
SELECT
    j.name AS job_name,
    j.schedule,
    j.interval_seconds,
    j.enabled,
    j.description,
    l.started_at AS last_started_at,
    l.finished_at AS last_finished_at,
    l.status AS last_status,
    l.error AS last_error,
    l.duration_ms AS last_duration_ms,
    l.runner AS last_runner,
    s.finished_at AS last_success_at,
    coalesce(l.started_at + make_interval(secs => j.interval_seconds), now()) AS next_due_at,
    j.enabled
    AND greatest(s.finished_at, j.updated_at)
    < now() - make_interval(secs => 2 * j.interval_seconds) AS overdue
FROM guard.jobs AS j
LEFT JOIN LATERAL (
    SELECT
        r.started_at,
        r.finished_at,
        r.status,
        r.error,
        r.duration_ms,
        r.runner
    FROM guard.job_runs AS r
    WHERE r.job_name = j.name
    ORDER BY r.started_at DESC, r.id DESC
    LIMIT 1
) AS l ON TRUE
LEFT JOIN LATERAL (
    SELECT r.finished_at
    FROM guard.job_runs AS r
    WHERE r.job_name = j.name AND r.status = 'succeeded'
    ORDER BY r.started_at DESC, r.id DESC
    LIMIT 1
) AS s ON TRUE;

-- The stored daily reports for BI tools: one row per day and company, with the company's name,
-- the rates as percentages and the trend unpacked. No personal data (no phone numbers).
CREATE VIEW guard.daily_report_view WITH (security_invoker = TRUE) AS
SELECT
    d.report_date,
    d.company_id,
    co.name AS company_name,
    d.total_calls,
    d.total_calls - d.inconsistent_calls AS consistent_calls,
    d.inconsistent_calls,
    d.inconsistency_rate_pct,
    CASE WHEN d.total_calls > 0 THEN 100 - d.inconsistency_rate_pct END AS consistency_rate_pct,
    d.auto_corrected,
    d.manual_reviews,
    round(100.0 * d.auto_corrected / nullif(d.auto_corrected + d.manual_reviews, 0), 2)
        AS auto_correction_rate_pct,
    d.open_review_items,
    d.top_issues -> 0 ->> 'rule_id' AS top_rule,
    (d.trend ->> 'previous_mean_rate_pct')::numeric AS previous_7_days_rate_pct,
    (d.trend ->> 'delta_pct_points')::numeric AS trend_delta_pct_points,
    d.trend ->> 'direction' AS trend_direction,
    d.by_rule,
    d.top_issues,
    d.generated_at
FROM guard.daily_reports AS d
LEFT JOIN public.companies AS co ON d.company_id = co.id;

-- The design's KPIs, each with its target (from guard.settings), current value and status:
-- ok (target met), breach (missed) or no_data (nothing to measure in the window).
-- consistency_rate: calls created in the last 24 h without an open alert about them.
-- validation_latency_p95: p95 of validate_booking latency, last 24 h.
-- breaker_recovery_time: mean time from a circuit opening (closed -> open) to closing again
-- (half_open -> closed), for closings in the last 7 days.
-- auto_correction_rate: corrections / (corrections + review items created), last 7 days.
-- review_queue_size: open and claimed review items now.
-- false_positive_rate: items dismissed as false positives / items closed, last 30 days.
CREATE VIEW guard.kpis WITH (security_invoker = TRUE) AS
WITH measured AS (
    SELECT
        'consistency_rate' AS kpi,
        'Calls of the last 24 h without an open alert' AS description,
        guard.setting('target_consistency_rate_pct')::numeric AS target,
        '>=' AS comparison,
        round(
            100.0 * count(*) FILTER (
                WHERE NOT EXISTS (
                    SELECT
                    FROM guard.alerts AS a
                    WHERE a.status = 'open' AND a.entity_type = 'call' AND a.entity_id = c.id
                )
            ) / nullif(count(*), 0),
            2
        ) AS current_value,
        'percent' AS unit,
        '24 hours' AS time_window,
        count(*) AS sample_size
    FROM public.calls AS c
    WHERE c.created_at >= now() - interval '24 hours'
    UNION ALL
    SELECT
        'validation_latency_p95' AS kpi,
        'validate_booking latency, 95th percentile' AS description,
        guard.setting('target_validation_p95_ms')::numeric AS target,
        '<=' AS comparison,
        round((percentile_cont(0.95) WITHIN GROUP (ORDER BY m.latency_ms))::numeric, 2) AS current_value,
        'ms' AS unit,
        '24 hours' AS time_window,
        count(*) AS sample_size
    FROM guard.validation_metrics AS m
    WHERE m.measured_at >= now() - interval '24 hours'
    UNION ALL
    SELECT
        'breaker_recovery_time' AS kpi,
        'Mean time from a circuit opening to closing again' AS description,
        guard.setting('target_breaker_recovery_seconds')::numeric AS target,
        '<=' AS comparison,
        round(avg(extract(EPOCH FROM closing.occurred_at - opening.occurred_at)), 2) AS current_value,
        'seconds' AS unit,
        '7 days' AS time_window,
        count(*) AS sample_size
    FROM guard.breaker_events AS closing
    CROSS JOIN
        LATERAL (
            SELECT o.occurred_at
            FROM guard.breaker_events AS o
            WHERE
                o.key = closing.key
                AND o.generation < closing.generation
                AND o.from_state = 'closed'
                AND o.to_state = 'open'
            ORDER BY o.generation DESC
            LIMIT 1
        ) AS opening
    WHERE
        closing.from_state = 'half_open'
        AND closing.to_state = 'closed'
        AND closing.occurred_at >= now() - interval '7 days'
    UNION ALL
    SELECT
        'auto_correction_rate' AS kpi,
        'Problems corrected automatically, of corrected plus sent to review' AS description,
        guard.setting('target_auto_correction_rate_pct')::numeric AS target,
        '>=' AS comparison,
        round(100.0 * fixes.n / nullif(fixes.n + queued.n, 0), 2) AS current_value,
        'percent' AS unit,
        '7 days' AS time_window,
        fixes.n + queued.n AS sample_size
    FROM
        (
            SELECT count(*) AS n FROM guard.correction_audit AS ca
            WHERE ca.corrected_at >= now() - interval '7 days'
        ) AS fixes,
        (
            SELECT count(*) AS n FROM guard.review_items AS ri
            WHERE ri.created_at >= now() - interval '7 days'
        ) AS queued
    UNION ALL
    SELECT
        'review_queue_size' AS kpi,
        'Review items open or claimed' AS description,
        guard.setting('target_review_queue_max')::numeric AS target,
        '<=' AS comparison,
        count(*) AS current_value,
        'items' AS unit,
        'now' AS time_window,
        count(*) AS sample_size
    FROM guard.review_items AS ri
    WHERE ri.status IN ('open', 'claimed')
    UNION ALL
    SELECT
        'false_positive_rate' AS kpi,
        'Review items dismissed as false positives, of items closed' AS description,
        guard.setting('target_false_positive_rate_pct')::numeric AS target,
        '<=' AS comparison,
        round(
            100.0 * count(*) FILTER (WHERE ri.status = 'dismissed' AND ri.false_positive)
            / nullif(count(*), 0),
            2
        ) AS current_value,
        'percent' AS unit,
        '30 days' AS time_window,
        count(*) AS sample_size
    FROM guard.review_items AS ri
    WHERE ri.status IN ('resolved', 'dismissed') AND ri.closed_at >= now() - interval '30 days'
)

SELECT
    m.kpi,
    m.description,
    m.target,
    m.comparison,
    m.current_value,
    m.unit,
    CASE
        WHEN m.current_value IS NULL THEN 'no_data'
        WHEN m.comparison = '>=' AND m.current_value >= m.target THEN 'ok'
        WHEN m.comparison = '<=' AND m.current_value <= m.target THEN 'ok'
        ELSE 'breach'
    END AS status,
    m.time_window,
    m.sample_size
FROM measured AS m;

-- Raise an operational alert about one job (rule job_failed or job_missed). One open alert per
-- rule and job: a repeat bumps occurrences and last_seen_at instead of adding a row.
CREATE FUNCTION guard.open_job_alert(
    alert_rule text, alert_job text, alert_message text, alert_details jsonb
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    INSERT INTO guard.alerts AS a (
        fingerprint, rule_id, company_id, entity_type, entity_id, severity, message, details
    )
    SELECT
        format('%s:job:%s', r.id, alert_job),
        r.id,
        NULL,
        'job',
        NULL,
        r.severity,
        alert_message,
        alert_details || jsonb_build_object('job', alert_job)
    FROM guard.rules AS r
    WHERE r.id = alert_rule AND r.enabled
    ON CONFLICT (fingerprint) WHERE status = 'open'
    DO UPDATE SET occurrences = a.occurrences + 1, last_seen_at = now();
END;
$$;

-- Resolve the open operational alert of one rule about one job (its problem has gone).
CREATE FUNCTION guard.resolve_job_alert(alert_rule text, alert_job text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    resolved_count integer;
BEGIN
    UPDATE guard.alerts AS a
    SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
    WHERE a.fingerprint = format('%s:job:%s', alert_rule, alert_job) AND a.status = 'open';
    GET DIAGNOSTICS resolved_count = ROW_COUNT;
    RETURN resolved_count;
END;
$$;

-- The missed-run check, called after every job run: an enabled job without a success within
-- twice its interval raises (or bumps) a job_missed alert; a job that is no longer overdue, or
-- was disabled, has its job_missed alert resolved. Returns the number of overdue jobs.
CREATE FUNCTION guard.check_job_heartbeats()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    late record;
    overdue_count integer := 0;
BEGIN
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
        a.rule_id = 'job_missed'
        AND a.status = 'open'
        AND a.fingerprint = format('job_missed:job:%s', s.job_name)
        AND NOT s.overdue;
    RETURN overdue_count;
END;
$$;

-- The retention job: deletes resolved alerts, breaker events, validation metrics and job runs
-- older than their retention setting, and pg_cron's run details of Booking Guard's own jobs
-- (cron.job_run_details is never cleaned by pg_cron) when pg_cron lives in this database.
-- The newest run and the newest success of every job are kept (they are its heartbeat).
CREATE FUNCTION guard.apply_retention()
RETURNS TABLE (target text, deleted bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    cron_schema text;
    job_runs_cutoff timestamptz
        := now() - make_interval(days => guard.setting('retention_job_runs_days')::integer);
BEGIN
    target := 'guard.alerts';
    DELETE FROM guard.alerts AS a
    WHERE
        a.status = 'resolved'
        AND a.resolved_at
        < now() - make_interval(days => guard.setting('retention_alerts_days')::integer);
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
        );
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

-- The daily report of one UTC day, one row per company, stored in guard.daily_reports: running
-- a day again replaces that day's rows (a report, not history). Definitions:
-- total_calls: calls created during the day (UTC). The day's alerts: detection alerts, open or
-- resolved, whenever first seen, about a call created that day (entity_type call, or
-- details.call_id), about an appointment created that day, or about neither (the failure
-- anomaly) first seen that day. inconsistent_calls: the day's calls with at least one of the
-- day's alerts. by_rule: the day's alerts per rule; top_issues: its five largest.
-- auto_corrected: correction_audit rows of the day; manual_reviews: review items created during
-- the day; open_review_items: open or claimed items when the report is generated. trend: this
-- day's rate against the mean rate of the reports stored for the 7 days before.
-- Operational alerts (entity_type job, no company) are not part of any company's report.
CREATE FUNCTION guard.daily_report(report_day date)
RETURNS SETOF guard.daily_reports
LANGUAGE sql
SET search_path = pg_catalog
AS $$
DELETE FROM guard.daily_reports AS d WHERE d.report_date = report_day;

WITH bounds AS (
    SELECT
        timezone('UTC', report_day::timestamp) AS day_start,
        timezone('UTC', (report_day + 1)::timestamp) AS day_end
),

day_calls AS (
    SELECT c.id, c.company_id
    FROM public.calls AS c, bounds AS b
    WHERE c.created_at >= b.day_start AND c.created_at < b.day_end
),

-- detection alerts from the start of the day on (a row is found after it was written), with
-- the call they concern, if any
alert_subjects AS (
    SELECT
        a.company_id,
        a.rule_id,
        a.entity_type,
        a.entity_id,
        a.first_seen_at,
        CASE
            WHEN a.entity_type = 'call' THEN a.entity_id
            WHEN a.details ->> 'call_id' ~ '^[0-9]{1,18}$' THEN (a.details ->> 'call_id')::bigint
        END AS call_id
    FROM guard.alerts AS a, bounds AS b
    WHERE a.first_seen_at >= b.day_start AND a.entity_type <> 'job'
),

-- the day's problems: alerts about the day's calls, about appointments created that day, and
-- alerts about neither (the failure anomaly) first seen that day
day_alerts AS (
    SELECT s.company_id, s.rule_id, s.call_id
    FROM alert_subjects AS s, bounds AS b
    WHERE
        s.company_id IS NOT NULL
        AND CASE
            WHEN s.call_id IS NOT NULL THEN EXISTS (SELECT FROM day_calls AS dc WHERE dc.id = s.call_id)
            WHEN s.entity_type = 'appointment'
                THEN EXISTS (
                    SELECT
                    FROM public.appointments AS ap
                    WHERE
                        ap.id = s.entity_id
                        AND ap.created_at >= b.day_start
                        AND ap.created_at < b.day_end
                )
            ELSE s.first_seen_at < b.day_end
        END
),

call_counts AS (
    SELECT
        dc.company_id,
        count(*) AS total_calls,
        count(*) FILTER (
            WHERE EXISTS (SELECT FROM day_alerts AS da WHERE da.call_id = dc.id)
        ) AS inconsistent_calls
    FROM day_calls AS dc
    GROUP BY dc.company_id
),

rule_counts AS (
    SELECT
        da.company_id,
        da.rule_id,
        count(*) AS alerts,
        row_number() OVER (PARTITION BY da.company_id ORDER BY count(*) DESC, da.rule_id) AS rank
    FROM day_alerts AS da
    GROUP BY da.company_id, da.rule_id
),

rules_by_company AS (
    SELECT
        rc.company_id,
        jsonb_object_agg(rc.rule_id, rc.alerts) AS by_rule,
        coalesce(
            jsonb_agg(
                jsonb_build_object(
                    'rule_id', rc.rule_id,
                    'count', rc.alerts,
                    'severity', r.severity,
                    'description', r.description
                )
                ORDER BY rc.rank
            ) FILTER (WHERE rc.rank <= 5),
            '[]'
        ) AS top_issues
    FROM rule_counts AS rc
    LEFT JOIN guard.rules AS r ON rc.rule_id = r.id
    GROUP BY rc.company_id
),

corrections AS (
    SELECT ca.company_id, count(*) AS corrected
    FROM guard.correction_audit AS ca, bounds AS b
    WHERE ca.corrected_at >= b.day_start AND ca.corrected_at < b.day_end
    GROUP BY ca.company_id
),

reviews AS (
    SELECT
        ri.company_id,
        count(*) FILTER (
            WHERE ri.created_at >= b.day_start AND ri.created_at < b.day_end
        ) AS created,
        count(*) FILTER (WHERE ri.status IN ('open', 'claimed')) AS still_open
    FROM guard.review_items AS ri, bounds AS b
    GROUP BY ri.company_id
),

rows_of_day AS (
    SELECT
        co.id AS company_id,
        coalesce(cc.total_calls, 0) AS total_calls,
        coalesce(cc.inconsistent_calls, 0) AS inconsistent_calls,
        coalesce(round(100.0 * cc.inconsistent_calls / nullif(cc.total_calls, 0), 2), 0)
        AS rate,
        coalesce(cr.corrected, 0) AS auto_corrected,
        coalesce(rv.created, 0) AS manual_reviews,
        coalesce(rv.still_open, 0) AS open_review_items,
        coalesce(rb.by_rule, '{}') AS by_rule,
        coalesce(rb.top_issues, '[]') AS top_issues,
        prev.days AS previous_days,
        prev.mean_rate AS previous_mean_rate
    FROM public.companies AS co
    LEFT JOIN call_counts AS cc ON co.id = cc.company_id
    LEFT JOIN corrections AS cr ON co.id = cr.company_id
    LEFT JOIN reviews AS rv ON co.id = rv.company_id
    LEFT JOIN rules_by_company AS rb ON co.id = rb.company_id
    CROSS JOIN LATERAL (
        SELECT count(*) AS days, round(avg(p.inconsistency_rate_pct), 2) AS mean_rate
        FROM guard.daily_reports AS p
        WHERE
            p.company_id = co.id
            AND p.report_date >= report_day - 7
            AND p.report_date < report_day
    ) AS prev
)

INSERT INTO guard.daily_reports AS d (
    report_date, company_id, total_calls, inconsistent_calls, inconsistency_rate_pct,
    auto_corrected, manual_reviews, open_review_items, by_rule, top_issues, trend, generated_at
)
SELECT
    report_day,
    rd.company_id,
    rd.total_calls,
    rd.inconsistent_calls,
    rd.rate,
    rd.auto_corrected,
    rd.manual_reviews,
    rd.open_review_items,
    rd.by_rule,
    rd.top_issues,
    jsonb_build_object(
        'previous_days', rd.previous_days,
        'previous_mean_rate_pct', rd.previous_mean_rate,
        'delta_pct_points', rd.rate - rd.previous_mean_rate,
        'direction',
        CASE
            WHEN rd.previous_days = 0 THEN 'no_data'
            WHEN rd.rate > rd.previous_mean_rate THEN 'worse'
            WHEN rd.rate < rd.previous_mean_rate THEN 'better'
            ELSE 'same'
        END
    ),
    now()
FROM rows_of_day AS rd
ORDER BY rd.company_id
RETURNING d.*;
$$;

-- Run one job now: what pg_cron and `guard jobs run` call. At most one run per job at a time (a
-- transaction-level advisory lock: a concurrent second run returns at once and says so), nothing
-- on a replica. The command from guard.jobs runs in a sub-transaction, so a failure rolls back
-- the job's work but is itself recorded in guard.job_runs and raised as a job_failed alert; a
-- success resolves the job's alerts. Every run ends with the missed-run check of all jobs.
-- Returns "<job>: succeeded|failed|skipped ..." (a failure is reported, not raised).
CREATE FUNCTION guard.run_job(job_name text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
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
$$;

-- Bring pg_cron's schedule in line with guard.jobs: every enabled job is scheduled as
-- guard_<name> running guard.run_job('<name>') (cron.schedule upserts by name); guard_* cron jobs
-- that are disabled or no longer exist are unscheduled. Where pg_cron is not installed in this
-- database nothing changes and the message says how to run the jobs instead. pg_cron's objects
-- are reached through the schema the extension lives in (dynamic SQL: it may not exist).
CREATE FUNCTION guard.schedule_jobs()
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    job record;
    cron_schema text;
    cron_names text[];
    stale_name text;
    scheduled_count integer := 0;
    removed_count integer := 0;
BEGIN
    -- pg_cron keeps its objects in schema cron, whatever its extnamespace says
    SELECT n.nspname INTO cron_schema
    FROM pg_catalog.pg_namespace AS n
    WHERE
        n.nspname = 'cron'
        AND EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pg_cron');
    IF NOT FOUND THEN
        RETURN 'pg_cron is not installed in this database: schedule skipped; '
            || 'run `guard jobs run` to run the jobs from outside';
    END IF;
    FOR job IN SELECT j.name, j.schedule FROM guard.jobs AS j WHERE j.enabled ORDER BY j.name LOOP
        EXECUTE format('SELECT %I.schedule($1::name, $2, $3)', cron_schema)
        USING 'guard_' || job.name, job.schedule, format('SELECT guard.run_job(%L)', job.name);
        scheduled_count := scheduled_count + 1;
    END LOOP;
    EXECUTE format(
        'SELECT coalesce(array_agg(c.jobname::text), %L) FROM %I.job AS c
        WHERE c.jobname LIKE $1 AND c.database = current_database()',
        '{}',
        cron_schema
    )
    INTO cron_names
    USING 'guard\_%';
    FOR stale_name IN
        SELECT n.cron_name
        FROM unnest(cron_names) AS n (cron_name)
        WHERE NOT EXISTS (
            SELECT FROM guard.jobs AS j WHERE j.enabled AND 'guard_' || j.name = n.cron_name
        )
        ORDER BY n.cron_name
    LOOP
        EXECUTE format('SELECT %I.unschedule($1::name)', cron_schema) USING stale_name;
        removed_count := removed_count + 1;
    END LOOP;
    RETURN format(
        'pg_cron: %s job(s) scheduled, %s unscheduled', scheduled_count, removed_count
    );
END;
$$;

-- Schedule the jobs now (or explain why not).
DO $$
BEGIN
    RAISE NOTICE '%', guard.schedule_jobs();
END;
$$;
