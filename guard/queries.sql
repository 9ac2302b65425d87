-- Every fixed statement the runtime sends, by name (guard/queries.py loads them once, at
-- import, under the same names). A block: `-- name: NAME`, the why-comments, the statement;
-- a blank line ends it. A statement with a part chosen at run time is a function there.
-- Linted by `make lint` through devtools/sqllint.py, with .sqlfluff's rules less these: layout
-- (statements kept compact), aliases (rows read by position), positional GROUP BY and LATERAL
-- subqueries, CP03 (sqlfluff reads ANY and EXISTS as functions).
-- sqlfluff:exclude_rules:LT01,LT02,LT05,LT06,LT07,LT08,LT09,LT11,LT14,AL03,AM04,AM06,CP03,RF04,ST05,ST06

-- --- guard/connection.py
-- name: BACKEND_PID
-- Behind PgBouncer the answering server's pid differs from the one the connection was given.
SELECT pg_backend_pid()

-- name: SET_STATEMENT_TIMEOUT
SELECT set_config('statement_timeout', %s, TRUE)

-- name: IN_RECOVERY
SELECT pg_is_in_recovery()

-- --- guard/booking.py
-- name: BEGIN_BOOKING
SELECT outcome, attempt_id, idempotency_key, appointment_id, booking_uid
FROM guard.begin_booking(%s, %s, %s, %s)

-- name: RECORD_BOOKING
-- Records, validates and closes the attempt, or rolls the booking back and queues it (a durable
-- commit either way): one statement, the same for every client (docs/booking-path.md).
SELECT outcome, appointment_id, review_item_id, reason
FROM guard.record_booking(%s, %s, %s, %s, %s, %s, %s)

-- name: FAIL_BOOKING_ATTEMPT
SELECT guard.fail_booking_attempt(%s, %s, %s)

-- name: UNSETTLED_BOOKING_ATTEMPTS
SELECT attempt_id, idempotency_key, company_id, call_id, service_id, state
FROM guard.unsettled_booking_attempts(%s, %s)

-- --- guard/booking.py, guard/calendar.py
-- name: RECORD_CALENDAR_BOOKING
-- Records a booking the calendar holds for a call, when the booking path will never record it,
-- and closes the attempt when a key is given: one statement (guard.record_calendar_booking).
SELECT guard.record_calendar_booking(%s, %s, %s, %s, %s, %s, %s, %s)

-- --- guard/ops/breaker_operator.py
-- name: BREAKER_OPERATOR_LOCK
-- The breaker tables' ROW EXCLUSIVE lock: granted only to a login that may write them (Booking
-- Guard's owner role, or a superuser), so it is the operator check; it conflicts with nothing
-- the application's write-behind does.
LOCK TABLE guard.breaker_state, guard.breaker_events IN ROW EXCLUSIVE MODE

-- name: BREAKER_CIRCUIT_LOCK
-- One operator at a time per circuit: the recorded state read here stays what Redis is seeded
-- from until this transaction commits the change.
SELECT pg_advisory_xact_lock(hashtextextended('guard.breaker:' || %s, 0))

-- name: BREAKER_KNOWN_GENERATION
-- The highest generation PostgreSQL recorded that the breaker could have written (a row outside
-- the bounds of codec.py is ignored: it is repaired, not continued).
SELECT max(generation) FROM (
SELECT generation FROM guard.breaker_state WHERE key = %(key)s
UNION ALL SELECT generation FROM guard.breaker_events WHERE key = %(key)s) AS known
WHERE generation BETWEEN 1 AND %(max)s

-- --- guard/breaker/persistence.py
-- name: RECORD_BREAKER_TRANSITIONS
SELECT guard.record_breaker_transitions(%s)

-- name: BREAKER_RESTORE_STATE
-- The opened-at as epoch milliseconds in a float: `infinity` (and a date past year 9999, which
-- psycopg cannot load as a datetime) then reaches the check as a number instead of an error.
SELECT state, generation, extract(EPOCH FROM opened_at)::float8 * 1000
FROM guard.breaker_restore_state(%s)

-- --- guard/breaker/registry.py
-- name: BREAKER_SETTINGS
SELECT key, value FROM guard.settings WHERE key = ANY(%s)

-- --- guard/calendar.py
-- name: CLOCK_TIMESTAMP
SELECT clock_timestamp()

-- name: DURABLE_COMMIT
-- What a reconciliation writes must survive a crash, and reach a synchronous standby, whatever
-- the server's synchronous_commit (for this transaction's commit only, as the booking path does).
-- With a company given, each transaction is also pinned to it (guard.pin_company): the SECURITY
-- DEFINER functions then refuse another company's call, as they do for a single-company
-- application; a pin lasts one transaction, so it is made in each.
SELECT set_config('synchronous_commit', 'on', TRUE)

-- name: DURABLE_COMMIT_PINNED
SELECT set_config('synchronous_commit', 'on', TRUE), guard.pin_company(%s)

-- name: LAST_REPLAYED_COMMIT
-- The commit time (on the old primary's clock) of the last transaction this server replayed
-- before it came out of recovery: NULL on a server started without recovery.
SELECT pg_last_xact_replay_timestamp(), pg_is_in_recovery()

-- name: ORPHANED_BOOKING_ATTEMPTS
-- The attempts still calling that were journaled before a time (the orphans of a failover).
SELECT idempotency_key, call_id, service_id
FROM guard.unsettled_booking_attempts(%s, 0)
WHERE state = 'calling' AND created_at <= %s ORDER BY created_at, attempt_id

-- name: RECONCILE_CALENDAR_BOOKING
SELECT action, appointment_id, call_id, call_company_id, customer_id, service_id,
    attempt_to_close, review_item_id, changed
FROM guard.reconcile_calendar_booking(%s, %s, %s, %s, %s, %s, %s)

-- name: QUEUE_MISSING_IN_CALENDAR
SELECT appointment_id, call_id, review_item_id, queued
FROM guard.queue_missing_in_calendar(%s, %s, %s, %s, %s, %s)

-- --- guard/cli/__init__.py
-- name: HAS_GUARD_SCHEMA
-- A database without Booking Guard: no schema `guard`, or no table guard.alerts in it (read from
-- the catalog, which every login may read).
SELECT EXISTS (
    SELECT FROM pg_catalog.pg_class AS c
    INNER JOIN pg_catalog.pg_namespace AS n ON c.relnamespace = n.oid
    WHERE n.nspname = 'guard' AND c.relname = 'alerts'
)

-- name: GUARD_COLUMNS
-- Every relation of Booking Guard's schema with its columns (from the catalog, which every login
-- may read): compared with the ones this guard was built for after an unexpected error.
SELECT c.relname, a.attname
FROM pg_catalog.pg_class AS c
INNER JOIN pg_catalog.pg_namespace AS n ON c.relnamespace = n.oid
INNER JOIN pg_catalog.pg_attribute AS a ON c.oid = a.attrelid
WHERE n.nspname = 'guard' AND a.attnum > 0 AND NOT a.attisdropped

-- --- guard/cli/alerts.py
-- name: ALERT_SHOW
SELECT a.id, a.severity, a.status, a.resolution, a.check_id, k.rule_id,
       k.description AS check_description, r.description AS rule_description,
       a.company_id, c.name AS company_name, a.entity_type, a.entity_id, a.occurrences,
       a.first_seen_at, a.last_seen_at, a.resolved_at, a.delivered_at,
       {message} AS message,
       {details} AS details
FROM {alerts} AS a
LEFT JOIN guard.checks AS k ON a.check_id = k.id
LEFT JOIN guard.rules AS r ON k.rule_id = r.id
LEFT JOIN public.companies AS c ON a.company_id = c.id
{masked}
WHERE a.id = %s

-- name: MAY_READ_ALERT_DETAILS
SELECT has_column_privilege(%s, 'details', 'SELECT')

-- name: CHECK_IS_KNOWN
SELECT EXISTS (SELECT FROM guard.checks WHERE id = %s)
OR EXISTS (SELECT FROM guard.alerts WHERE check_id = %s)

-- --- guard/cli/calendar.py
-- name: MAY_RECONCILE_CALENDAR
SELECT has_function_privilege('guard.reconcile_calendar_booking(bigint, text, text, timestamptz, timestamptz, bigint, text)', 'EXECUTE')
AND has_function_privilege('guard.queue_missing_in_calendar(bigint, timestamptz, timestamptz, timestamptz, text[], integer)', 'EXECUTE')
AND has_function_privilege('guard.audit_calendar_restorations(bigint[], timestamptz)',
    'EXECUTE')

-- name: AUDIT_CALENDAR_RESTORATIONS
-- Every appointment the run recorded leaves a guard.correction_audit row (after a failover, with
-- the last transaction the promoted server replayed): the trail the on-call reads.
SELECT guard.audit_calendar_restorations(%s::bigint[], %s)

-- --- guard/cli/check.py
-- name: RUN_CHECKS_WINDOWED
-- One windowed pass with each check's status and error (guard.detect() without them): every
-- check runs isolated, and one that fails, is cut by the pass's timeout or is skipped after it
-- does not stop the others (guard.run_checks).
SELECT * FROM guard.run_checks(now() - make_interval(mins =>
(guard.setting('detection_window_minutes') #>> '{}')::integer), NULL)

-- name: INTEGER_SETTING
SELECT (guard.setting(%s) #>> '{}')::integer

-- name: RECONCILE
SELECT * FROM guard.reconcile(%s)

-- name: ASSERT_TENANT
SELECT guard.assert_tenant(%s)

-- name: MAY_READ_CHECKS
SELECT has_table_privilege('guard.checks', 'SELECT')

-- name: CHECK_THRESHOLDS
-- The checks that have thresholds, each with them as `guard check` shows them (`warn above 5,
-- error above 12.5 rows`; a rate_pct check counts offending rows per 100 calls).
SELECT id, warn_above, error_above, threshold_unit,
concat_ws(', ', 'warn above ' || trim_scale(warn_above), 'error above ' || trim_scale(error_above))
|| CASE threshold_unit WHEN 'rate_pct' THEN ' per 100 calls' ELSE ' rows' END
FROM guard.checks WHERE warn_above IS NOT NULL OR error_above IS NOT NULL

-- name: MAY_RUN_CHECKS
SELECT has_function_privilege('guard.run_checks(timestamptz, bigint)', 'EXECUTE')

-- name: CALL_COMPANY
SELECT company_id FROM calls WHERE id = %s

-- name: RUN_CHECKS_FOR_CALL
SELECT * FROM guard.run_checks(NULL, %s)

-- name: BOOKING_SUBSCRIPTION
SELECT guard.booking_subscription()

-- name: LATEST_DETECTION_OUTCOMES
SELECT DISTINCT ON (check_id) check_id, outcome FROM guard.detection_runs
WHERE check_id = ANY(%s) AND outcome IS NOT NULL ORDER BY check_id ASC, id DESC

-- name: CHECK_CALL
-- guard.check_call for a login that may not run guard.run_checks: each check with a status and
-- an error as guard.run_checks gives them, as far as this login can tell.
SELECT *, CASE WHEN offending IS NULL THEN 'not run' ELSE 'ok' END,
CASE WHEN offending IS NULL THEN 'failed, cut or skipped (a login that may run guard.run_checks,'
    || ' or the alerts check_failed and check_over_budget, say why)' END
FROM guard.check_call(%s)

-- --- guard/cli/demo.py
-- name: CREATE_PG_CRON
CREATE EXTENSION IF NOT EXISTS pg_cron

-- name: TENANT_GRANT
SELECT guard.tenant_grant(%s, %s)

-- name: TENANT_REVOKE
SELECT guard.tenant_revoke(%s, %s)

-- name: DEMO_STATE
-- What `guard demo` ends with: the open alerts, the review items waiting, the constraints still
-- NOT VALID, and the jobs it scheduled.
SELECT (SELECT count(*) FROM guard.alerts WHERE status = 'open'),
(SELECT count(*) FROM guard.review_items WHERE status IN ('open', 'claimed')),
(SELECT count(*) FROM pg_constraint WHERE starts_with(conname, 'guard_') AND NOT convalidated),
guard.schedule_jobs()

-- name: DEMO_REPORTING_LOGIN
-- The reporting login docs/bi.md's examples connect as (REPORTING_LOGIN of guard/cli/demo.py), a
-- member of the reporting role, bound to every company of the demo (the cluster trusts local
-- logins: no password).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bi_user') THEN
        CREATE ROLE bi_user LOGIN;
    END IF;
    IF guard.role('reporting') IS NOT NULL THEN
        EXECUTE format('GRANT %I TO bi_user', guard.role('reporting'));
    END IF;
    PERFORM guard.tenant_grant('bi_user', id) FROM public.companies ORDER BY id;
END
$$

-- name: DATABASE_EXISTS
SELECT 1 FROM pg_database WHERE datname = %s

-- name: CREATE_DATABASE
CREATE DATABASE {}

-- --- guard/ops/jobs.py
-- name: JOB_STATUS
SELECT s.job_name, s.schedule, s.interval_seconds, s.enabled, s.last_started_at,
       s.last_finished_at, s.last_status, s.last_error, s.last_duration_ms, s.last_runner,
       s.last_success_at, s.next_due_at, s.overdue
FROM guard.job_status AS s
ORDER BY s.job_name

-- name: RECORD_FAILED_JOB_RUN
SELECT guard.record_job_run(%s, %s, 'failed', %s, %s)

-- name: CRON_JOBS_READABLE
-- Whether this login may read pg_cron's jobs: NULL where pg_cron is absent, false where it may
-- not (schema cron without USAGE, or cron.job without SELECT). In this order: naming cron.job
-- without USAGE on its schema is an error.
SELECT CASE WHEN n.oid IS NULL THEN NULL
    WHEN NOT has_schema_privilege(n.oid, 'USAGE') THEN FALSE
    WHEN to_regclass('cron.job') IS NULL THEN NULL
    ELSE has_table_privilege('cron.job', 'SELECT') END
FROM (SELECT) AS one LEFT JOIN pg_namespace AS n ON n.nspname = 'cron'  -- noqa: ST11

-- name: CRON_JOBS
SELECT substr(c.jobname, 7), c.schedule, c.active FROM cron.job AS c
WHERE c.jobname LIKE 'guard\_%' AND c.database = current_database()

-- name: CRON_FORMS
SELECT j.name, guard.cron_schedule(j.schedule) FROM unnest(%s::text[]) AS n (name)
INNER JOIN guard.jobs AS j ON n.name = j.name

-- name: MAY_RUN_JOBS
SELECT has_function_privilege('guard.run_job(text)', 'EXECUTE')

-- name: NOW
SELECT now()

-- name: JOB_COMMAND
SELECT guard.job_command(%s), clock_timestamp()

-- --- guard/ops/daily_report.py
-- name: DAILY_REPORT_ROWS
-- Every column of the view, in its order: the report is what the view shows.
SELECT v.* FROM guard.daily_report_view AS v WHERE v.report_date = %s ORDER BY v.company_id

-- name: COMPUTED_DAILY_REPORT_ROWS
-- guard.daily_report_view's columns over guard.compute_daily_report(day) instead of the stored
-- rows: a day not ended, and on a hot standby (where nothing can be stored) a day not stored,
-- computed by reading only. Kept equal to sql/views/guard.daily_report_view.sql
-- (tests/ha/test_standby_commands.py compares the two reports).
SELECT
    d.report_date, d.company_id, co.name AS company_name, d.total_calls,
    d.total_calls - d.inconsistent_calls AS consistent_calls, d.inconsistent_calls,
    d.inconsistency_rate_pct,
    CASE WHEN d.total_calls > 0 THEN 100 - d.inconsistency_rate_pct END AS consistency_rate_pct,
    d.auto_corrected, d.manual_reviews,
    round(100.0 * d.auto_corrected / nullif(d.auto_corrected + d.manual_reviews, 0), 2)
        AS auto_correction_rate_pct,
    d.open_review_items, d.top_issues -> 0 ->> 'rule_id' AS top_rule,
    (d.trend ->> 'previous_mean_rate_pct')::numeric AS previous_7_days_rate_pct,
    (d.trend ->> 'delta_pct_points')::numeric AS trend_delta_pct_points,
    d.trend ->> 'direction' AS trend_direction, d.by_rule, d.top_issues, d.generated_at,
    d.by_check, d.total_appointments, d.recovery_rate_pct, d.detection_latency_p95_seconds,
    d.action_items,
    (d.trend ->> 'previous_mean_recovery_rate_pct')::numeric AS previous_7_days_recovery_rate_pct,
    (d.trend ->> 'recovery_delta_pct_points')::numeric AS recovery_delta_pct_points,
    (d.trend ->> 'previous_mean_detection_latency_p95_seconds')::numeric
        AS previous_7_days_detection_latency_p95_seconds,
    (d.trend ->> 'detection_latency_delta_seconds')::numeric AS detection_latency_delta_seconds
FROM guard.compute_daily_report(%s) AS d
LEFT JOIN public.companies AS co ON d.company_id = co.id
ORDER BY d.company_id

-- name: UTC_TODAY
SELECT (now() AT TIME ZONE 'UTC')::date

-- name: DAILY_REPORT_ROW_COUNT
SELECT count(*) FROM guard.daily_report(%s)

-- --- guard/demo/story.py
-- name: DEMO_BOOKABLE_CALLS
SELECT c.id, s.id FROM calls AS c INNER JOIN services AS s ON c.company_id = s.company_id  -- noqa: AL08
WHERE c.session_outcome = 'information_only' ORDER BY c.id, s.id LIMIT 20

-- name: RECONCILE_EVERYTHING
SELECT action, affected FROM guard.reconcile()

-- --- guard/ops/detection.py
-- name: ARM_DETECTION_TIMEOUT
-- The timer of statement_timeout starts with a top-level statement, so a function cannot arm it
-- for itself: whoever runs a detection pass arms it for the statement that follows.
-- It returns the timeout in milliseconds (0: none), which the caller needs to tell the timer from
-- a cancel (set_config's own answer is PostgreSQL's rendering: 60000ms reads back as 1min).
SELECT t.ms
FROM (SELECT (guard.setting('detection_statement_timeout_ms') #>> '{}')::integer AS ms) AS t
CROSS JOIN LATERAL set_config('statement_timeout', t.ms || 'ms', TRUE)

-- name: HISTORY_START
SELECT guard.history_start()

-- name: ENABLED_CHECK_RULES
SELECT id, rule_id FROM guard.checks WHERE enabled AND check_view IS NOT NULL ORDER BY id

-- name: OPEN_ALERT_ID_RANGE
SELECT min(id), max(id) FROM guard.alerts WHERE status = 'open'

-- name: HISTORY_CHECKS
SELECT check_id FROM guard.history_checks()

-- name: HISTORY_ROWS_ESTIMATE
-- The planner's estimate, or one from the table's size when it was never analysed (about 50 rows
-- a page, as calls and appointments are).
SELECT max(CASE WHEN c.reltuples >= 0 THEN c.reltuples
    ELSE pg_relation_size(c.oid) / 8192 * 50 END)::bigint
FROM pg_class AS c WHERE c.oid IN ('public.calls'::regclass, 'public.appointments'::regclass)

-- name: RUN_CHECKS_BETWEEN
SELECT * FROM guard.run_checks_between(%s, %s, %s, %s)

-- name: HISTORY_CALL_CANDIDATES
SELECT check_id, entity_ids FROM guard.history_call_candidates(%s, %s)

-- name: RECHECK_ALERTS_BETWEEN
SELECT * FROM guard.recheck_alerts_between(%s, %s)

-- --- guard/ops/dispatch/loop.py
-- name: LISTEN_CHANNEL
LISTEN {}

-- name: NOTIFY_CHANNEL
NOTIFY {}

-- name: UNLISTEN_CHANNEL
UNLISTEN {}

-- --- guard/ops/dispatch/outbox.py
-- name: LOGIN_SETTING
SELECT current_setting(%s), session_user::text

-- name: DRAIN_DETECTION_QUEUE
SELECT guard.drain_detection_queue()

-- name: SECONDS_UNTIL_DETECTION_DUE
SELECT extract(EPOCH FROM min(due_at) - clock_timestamp())::float8 FROM guard.detection_queue

-- name: ENQUEUE_ALERT_DELIVERIES
SELECT * FROM guard.enqueue_alert_deliveries(%s::text[], %s, %s)

-- name: ENQUEUE_RESOLVED_NOTICES
SELECT guard.enqueue_resolved_notices(%s::text[])

-- name: ALERTS_FOR_DELIVERY
SELECT * FROM guard.alerts_for_delivery(%s::bigint[])

-- name: ENQUEUE_REVIEW_NOTICES
SELECT guard.enqueue_review_notices(%s::text[], %s::smallint[])

-- name: REVIEW_NOTICE_ITEMS
SELECT * FROM guard.review_notice_items(%s::bigint[])

-- name: ENQUEUE_REPORT_DELIVERIES
SELECT guard.enqueue_report_deliveries(%s::text[])

-- name: ENQUEUE_DELIVERIES
SELECT guard.enqueue_deliveries(%s, %s::text[], %s::bigint[])

-- name: CLAIM_DELIVERIES
SELECT * FROM guard.claim_deliveries(%s, %s, %s, %s, %s, %s)

-- name: SETTLE_DELIVERIES
SELECT guard.settle_deliveries(%s, %s, %s::bigint[], %s, %s, %s, %s)

-- name: COMPLETE_ALERT_DIGEST
SELECT guard.complete_alert_digest(%s, %s, %s::bigint[])

-- name: SKIP_ALERT_DELIVERIES_BELOW
SELECT guard.skip_alert_deliveries_below(%s, %s, %s)

-- name: SKIP_ALERT_DELIVERIES
SELECT guard.skip_alert_deliveries(%s, %s::text[], %s)

-- name: RELEASE_DELIVERIES
SELECT guard.release_deliveries(%s, %s)

-- name: SECONDS_UNTIL_DELIVERY_DUE
SELECT ch.channel, extract(EPOCH FROM min(least(f.due, h.due)) - now())
FROM unnest(%s::text[], %s::text[]) AS ch (kind, channel)
LEFT JOIN LATERAL (SELECT d.next_attempt_at AS due
    FROM guard.deliveries AS d
    WHERE d.kind = ch.kind AND d.channel = ch.channel AND d.status = 'pending'
    AND d.claimed_until IS NULL
    ORDER BY d.next_attempt_at LIMIT 1) AS f ON TRUE
LEFT JOIN LATERAL (SELECT min(greatest(d.next_attempt_at, d.claimed_until)) AS due
    FROM guard.deliveries AS d
    WHERE d.kind = ch.kind AND d.channel = ch.channel AND d.status = 'pending'
    AND d.claimed_until IS NOT NULL) AS h ON TRUE
WHERE f.due IS NOT NULL OR h.due IS NOT NULL
GROUP BY ch.channel

-- name: DELIVERY_STATUS_COUNTS
SELECT d.status, count(*) FROM guard.deliveries AS d
WHERE d.kind = 'alert' AND d.channel = ANY(%s::text[]) GROUP BY d.status

-- name: RETRYING_DELIVERY_COUNTS
SELECT d.channel, count(*) FROM guard.deliveries AS d
WHERE d.kind = 'alert' AND d.channel = ANY(%s::text[]) AND d.status = 'pending'
AND d.attempts > 0
GROUP BY d.channel ORDER BY d.channel

-- --- guard/ops/metrics.py
-- name: METRIC_PROBE
-- What "can read PostgreSQL" means for guard_up: connected to a primary (a hot standby is not what
-- the exporter is for: docs/runbooks.md), and the Booking Guard schema is there. The server's
-- clock too: ages of cached rows are computed against it.
SELECT
    pg_is_in_recovery(),
    to_regclass('guard.alerts') IS NOT NULL,
    to_regclass('guard.jobs') IS NOT NULL AND to_regclass('guard.job_runs') IS NOT NULL,
    to_regclass('guard.deliveries') IS NOT NULL,
    to_regclass('guard.metric_totals') IS NOT NULL,
    extract(EPOCH FROM now())::float8

-- name: METRIC_ALERTS
-- Every series' rows come shaped for the exposition: (family, sample suffix, labels, value), in
-- the order exposed, labels sorted by code point (COLLATE "C").
-- Open alerts per check and severity, counted a check at a time on alerts_open_by_check_idx:
-- the checks that have open alerts come from a walk of that index (one probe per check, the
-- check ids of removed checks included), so no plan reads the whole table, whatever the
-- statistics say about how many alerts are open. Enabled checks with none get a 0.
WITH RECURSIVE open_checks AS (
    (SELECT a.check_id FROM guard.alerts AS a WHERE a.status = 'open' ORDER BY a.check_id LIMIT 1)
    UNION ALL
    SELECT (
        SELECT a.check_id FROM guard.alerts AS a
        WHERE a.status = 'open' AND a.check_id > o.check_id ORDER BY a.check_id LIMIT 1
    )
    FROM open_checks AS o WHERE o.check_id IS NOT NULL
), counted (rule_id, check_id, severity, alerts) AS (
    SELECT coalesce(k.rule_id, '(unknown)'), o.check_id, s.severity, s.alerts
    FROM open_checks AS o
    CROSS JOIN LATERAL (
        SELECT a.severity, count(*) AS alerts FROM guard.alerts AS a
        WHERE a.status = 'open' AND a.check_id = o.check_id GROUP BY a.severity
    ) AS s
    LEFT JOIN guard.checks AS k ON o.check_id = k.id
    WHERE o.check_id IS NOT NULL
    UNION ALL
    SELECT k.rule_id, k.id, k.severity, 0 FROM guard.checks AS k
    WHERE k.enabled AND NOT EXISTS (
        SELECT FROM guard.alerts AS a WHERE a.check_id = k.id AND a.status = 'open'
    )
)
SELECT 'guard_alerts_open', '',
    jsonb_build_object('rule_id', c.rule_id, 'check_id', c.check_id, 'severity', c.severity),
    c.alerts
FROM counted AS c
ORDER BY c.rule_id COLLATE "C", c.check_id COLLATE "C", c.severity COLLATE "C"  -- noqa: RF02, RF03

-- name: METRIC_REVIEW
-- Reads every item ever closed (cached), once: the oldest open item comes as a time, so its age
-- is right at every scrape between two readings.
WITH counted AS MATERIALIZED (
    SELECT r.reason, r.status, count(*) AS items,
        min(r.created_at) FILTER (WHERE r.status IN ('open', 'claimed')) AS oldest
    FROM guard.review_items AS r GROUP BY r.reason, r.status
)
SELECT r.family, r.sample, r.labels, r.value FROM (
    SELECT 'guard_review_items', '', jsonb_build_object('reason', c.reason, 'status', c.status),
        c.items::float8, c.reason, c.status
    FROM counted AS c
    UNION ALL
    SELECT 'guard_review_oldest_open_age_seconds', '', '{}',
        extract(EPOCH FROM min(c.oldest))::float8, NULL, NULL
    FROM counted AS c
) AS r (family, sample, labels, value, reason, status)
ORDER BY r.reason COLLATE "C", r.status COLLATE "C"  -- noqa: RF02, RF03

-- name: METRIC_BREAKER
-- One probe of breaker_events_key_generation_key per circuit, not a pass over every event.
SELECT r.family, r.sample, r.labels, r.value FROM (
    SELECT 'guard_breaker_state', '', jsonb_build_object('key', s.key, 'state', o.state),
        (s.state = o.state)::int, s.key, o.n
    FROM guard.breaker_state AS s
    CROSS JOIN unnest('{closed,open,half_open,forced_open,forced_closed,disabled}'::text[])
        WITH ORDINALITY AS o (state, n)
    UNION ALL
    SELECT 'guard_breaker_transitions', '_total', jsonb_build_object('key', s.key),
        coalesce(greatest(s.generation, (
            SELECT max(ev.generation) FROM guard.breaker_events AS ev WHERE ev.key = s.key
        )), 0), s.key, 0
    FROM guard.breaker_state AS s
) AS r (family, sample, labels, value, key, n)
ORDER BY r.key COLLATE "C", r.n  -- noqa: RF02, RF03

-- name: METRIC_LATENCY
-- A gauge histogram of the window (its buckets counted from each bound down; `le` as Prometheus'
-- clients write a bound: 1.0, not 1) and its percentiles, absent when there were no validations.
WITH w AS MATERIALIZED (
    SELECT m.latency_ms / 1000.0 AS seconds FROM guard.validation_metrics AS m
    WHERE m.measured_at > now() - make_interval(secs => %(window)s)
), counted AS (SELECT count(*) AS calls, coalesce(sum(w.seconds), 0) AS seconds FROM w)
SELECT r.family, r.sample, r.labels, r.value FROM (
    SELECT 'guard_validation_latency_window_seconds', '_bucket',
        jsonb_build_object('le', regexp_replace(b.bound::text, '^(\d+)$', '\1.0')),
        count(w.seconds)::float8, b.n
    FROM unnest('{0.0005,0.001,0.0025,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5}'::float8[])
        WITH ORDINALITY AS b (bound, n)
    LEFT JOIN w ON b.bound >= w.seconds
    GROUP BY b.bound, b.n
    UNION ALL
    SELECT 'guard_validation_latency_window_seconds', x.sample, x.labels, x.value, x.n
    FROM counted AS n CROSS JOIN LATERAL (VALUES
        ('_bucket', '{"le": "+Inf"}'::jsonb, n.calls::float8, 100),
        ('_gcount', '{}', n.calls::float8, 101),
        ('_gsum', '{}', n.seconds::float8, 102)
    ) AS x (sample, labels, value, n)
    UNION ALL
    SELECT 'guard_validation_latency_percentile_seconds', '', jsonb_build_object('percentile', q.label),
        q.value, q.n
    FROM counted AS n CROSS JOIN LATERAL unnest(
        (SELECT percentile_cont('{0.5,0.95,0.99}'::float8[]) WITHIN GROUP (ORDER BY w.seconds) FROM w),
        '{50,95,99}'::text[]
    ) WITH ORDINALITY AS q (value, label, n)
    WHERE n.calls > 0
) AS r (family, sample, labels, value, n)
ORDER BY r.n

-- name: METRIC_CONSISTENCY
-- Probing alerts_open_by_check_idx (check_id, ...) per call without its leading column
-- cost calls x open alerts. Instead the day's calls are counted on guard_calls_created_at_idx,
-- and the calls with an open alert are found from the open alerts (alerts_open_by_check_idx
-- read once) through the calls' primary key: calls + open alerts.
-- The day's start is read in the application's zone (guard.to_app_time: the bare column's index
-- on timestamptz columns, a bound in wall-clock time on timestamp ones), from it on, as guard.kpis
-- counts: the second row is guard.kpis' consistency_rate, by the view's own expression, so that
-- METRIC_KPIS need not count the day's calls a second time.
WITH day AS MATERIALIZED (
    SELECT guard.to_app_time(
        now() - interval '24 hours',
        (SELECT x.created_at FROM public.calls AS x LIMIT 0),  -- noqa: AM09
        guard.app_time_zone()
    ) AS since
), counted AS MATERIALIZED (
    SELECT
        (SELECT count(*) FROM public.calls AS c, day WHERE c.created_at >= day.since) AS calls,
        (SELECT count(*) FROM public.calls AS c, day
         WHERE c.id IN (
             SELECT a.entity_id FROM guard.alerts AS a
             WHERE a.status = 'open' AND a.entity_type = 'call'
         ) AND c.created_at >= day.since) AS inconsistent
)
SELECT 'guard_consistency_ratio', '', '{}'::jsonb,
    CASE WHEN n.calls = 0 THEN 1 ELSE 1 - n.inconsistent::float8 / n.calls::float8 END
FROM counted AS n
UNION ALL
SELECT 'guard_kpi_value', '', '{"kpi": "consistency_rate"}',
    round(100.0 * (n.calls - n.inconsistent) / n.calls, 2)::float8
FROM counted AS n WHERE n.calls > 0

-- name: METRIC_CORRECTIONS
-- Audit rows written before migration 0027 name the check that found the row; they count under
-- its rule, so a rule has one series whatever wrote the row.
SELECT 'guard_corrections', '_total', jsonb_build_object('rule_id', coalesce(k.rule_id, c.rule_id)),
    count(*)::float8
FROM guard.correction_audit AS c LEFT JOIN guard.checks AS k ON c.rule_id = k.id
GROUP BY coalesce(k.rule_id, c.rule_id)
ORDER BY coalesce(k.rule_id, c.rule_id) COLLATE "C"  -- noqa: RF02, RF03

-- name: METRIC_JOBS
-- The newest run and the newest success of each job, each from the end of
-- job_runs_job_started_idx, whatever the number of runs retention keeps. `job_name`, not `job`:
-- Prometheus owns `job` (and `instance`) as target labels and would rename ours to
-- `exported_job`, so rules and panels would show the scrape job.
WITH latest AS MATERIALIZED (
    SELECT j.name, newest.status, extract(EPOCH FROM newest.finished_at)::float8 AS finished,
        extract(EPOCH FROM success.finished_at)::float8 AS succeeded
    FROM guard.jobs AS j
    LEFT JOIN LATERAL (
        SELECT r.status, r.finished_at FROM guard.job_runs AS r WHERE r.job_name = j.name
        ORDER BY r.started_at DESC, r.id DESC LIMIT 1
    ) AS newest ON TRUE
    LEFT JOIN LATERAL (
        SELECT r.finished_at FROM guard.job_runs AS r
        WHERE r.job_name = j.name AND r.status = 'succeeded'
        ORDER BY r.started_at DESC, r.id DESC LIMIT 1
    ) AS success ON TRUE
    WHERE j.enabled
)
SELECT r.family, r.sample, r.labels, r.value FROM (
    SELECT 'guard_job_last_run_status', '', jsonb_build_object('job_name', l.name, 'status', s.status),
        coalesce((l.status = s.status)::int, 0)::float8, l.name, s.n
    FROM latest AS l CROSS JOIN unnest('{succeeded,failed}'::text[]) WITH ORDINALITY AS s (status, n)
    UNION ALL
    SELECT 'guard_job_last_run_timestamp_seconds', '', jsonb_build_object('job_name', l.name),
        l.finished, l.name, 0
    FROM latest AS l WHERE l.finished IS NOT NULL
    UNION ALL
    SELECT 'guard_job_last_success_timestamp_seconds', '', jsonb_build_object('job_name', l.name),
        l.succeeded, l.name, 0
    FROM latest AS l WHERE l.succeeded IS NOT NULL
) AS r (family, sample, labels, value, name, n)
ORDER BY r.name COLLATE "C", r.n  -- noqa: RF02, RF03

-- name: METRIC_TARGETS
-- The KPI targets a DBA sets (guard.settings, target_*): the alert rules compare with them, so a
-- changed target needs no change of the rules. A handful of rows on the primary key's range.
SELECT 'guard_kpi_target', '', jsonb_build_object('setting', s.key), (s.value #>> '{}')::float8
FROM guard.settings AS s
WHERE s.key LIKE 'target\_%' AND jsonb_typeof(s.value) = 'number'
ORDER BY s.key COLLATE "C"  -- noqa: RF02, RF03

-- name: METRIC_KPIS
-- The KPIs' current values (guard.kpis), beside their targets: a dashboard and an alert rule read
-- the value the BI view shows, not a ratio rebuilt from counters. All but consistency_rate, whose
-- value comes with METRIC_CONSISTENCY's counts: the planner drops that branch of the view (its
-- kpi is a constant), the one that counts every call of the day.
SELECT 'guard_kpi_value', '', jsonb_build_object('kpi', k.kpi), k.current_value::float8
FROM guard.kpis AS k
WHERE k.current_value IS NOT NULL AND k.kpi <> 'consistency_rate'
ORDER BY k.kpi COLLATE "C"  -- noqa: RF02, RF03

-- name: METRIC_DELIVERIES
SELECT 'guard_alert_deliveries', '', jsonb_build_object('channel', d.channel, 'status', d.status),
    count(*)::float8
FROM guard.deliveries AS d
WHERE d.kind = 'alert'
GROUP BY d.channel, d.status
ORDER BY d.channel COLLATE "C", d.status COLLATE "C"  -- noqa: RF02, RF03

-- name: METRIC_WATERMARK
-- Cumulative counts that survive retention: the totals guard.fold_metric_totals folded before its
-- watermark (retention deletes only rows before it), plus the rows from the watermark on, each
-- range read on an index by its time (about a day of rows: retention folds daily). The watermark
-- is read first and passed as a value (_WATERMARK, `since`, as text: it may be -infinity), so the
-- planner sees how recent it is and keeps to the index; a subquery would be estimated at a third
-- of the table.
SELECT coalesce(
    (SELECT w.folded_before FROM guard.metric_watermark AS w), '-infinity'::timestamptz
)::text

-- name: METRIC_COUNTERS
-- The booking attempts settled since the watermark, read a state at a time (each range on the
-- index by state and time), the attempts the booking path timed and the counts of each outcome.
WITH settled (state, calendar_calls, seconds) AS (SELECT b.state, b.calendar_calls, extract(EPOCH FROM b.finished_at - b.created_at)::float8
FROM guard.booking_attempts AS b
WHERE b.state = 'failed'
AND b.finished_at >= %(since)s::timestamptz
AND b.calendar_calls IS NOT NULL
UNION ALL SELECT b.state, b.calendar_calls, extract(EPOCH FROM b.finished_at - b.created_at)::float8
FROM guard.booking_attempts AS b
WHERE b.state = 'queued'
AND b.finished_at >= %(since)s::timestamptz
AND b.calendar_calls IS NOT NULL
UNION ALL SELECT b.state, b.calendar_calls, extract(EPOCH FROM b.finished_at - b.created_at)::float8
FROM guard.booking_attempts AS b
WHERE b.state = 'booked'
AND b.finished_at >= %(since)s::timestamptz
AND b.calendar_calls IS NOT NULL), recoveries AS (
    SELECT e.key,
        greatest(0, extract(EPOCH FROM e.occurred_at - opened.occurred_at))::float8 AS seconds
    FROM guard.breaker_events AS e
    CROSS JOIN LATERAL (
        SELECT o.occurred_at FROM guard.breaker_events AS o
        WHERE o.key = e.key AND o.generation < e.generation
            AND o.from_state = 'closed' AND o.to_state = 'open'
        ORDER BY o.generation DESC LIMIT 1
    ) AS opened
    WHERE e.from_state = 'half_open' AND e.to_state = 'closed'
        AND e.recorded_at >= %(since)s::timestamptz
), durations (histogram, label, seconds) AS (
    SELECT 'booking_duration', s.state, s.seconds FROM settled AS s
    UNION ALL
    SELECT 'breaker_recovery', r.key, r.seconds FROM recoveries AS r
), counts AS (
    SELECT t.counter, t.label, t.total AS n FROM guard.metric_totals AS t
    UNION ALL SELECT 'bookings', b.state, count(*)
FROM guard.booking_attempts AS b
WHERE b.state = 'failed'
AND b.finished_at >= %(since)s::timestamptz GROUP BY b.state
UNION ALL SELECT 'bookings', b.state, count(*)
FROM guard.booking_attempts AS b
WHERE b.state = 'queued'
AND b.finished_at >= %(since)s::timestamptz GROUP BY b.state
UNION ALL SELECT 'bookings', b.state, count(*)
FROM guard.booking_attempts AS b
WHERE b.state IN ('booked', 'recovered')
AND b.finished_at >= %(since)s::timestamptz GROUP BY b.state
    UNION ALL
    SELECT 'validations', CASE WHEN m.ok THEN 'passed' ELSE 'failed' END, count(*)
    FROM guard.validation_metrics AS m WHERE m.measured_at >= %(since)s::timestamptz GROUP BY m.ok
    UNION ALL
    SELECT 'validation_failures', coalesce(m.failure_reason, 'unknown'), count(*)
    FROM guard.validation_metrics AS m
    WHERE NOT m.ok AND m.measured_at >= %(since)s::timestamptz GROUP BY 2
    UNION ALL
    SELECT 'alerts_opened', a.check_id, count(*) FROM guard.alerts AS a
    WHERE a.first_seen_at >= %(since)s::timestamptz GROUP BY a.check_id
    UNION ALL
    -- every enabled check from 0: increase() misses what a series counted when it appeared
    SELECT 'alerts_opened', k.id, 0 FROM guard.checks AS k WHERE k.enabled
    UNION ALL
    SELECT 'booking_retries', guard.booking_retry_outcome(s.state, s.calendar_calls), count(*)
    FROM settled AS s WHERE guard.booking_retry_outcome(s.state, s.calendar_calls) IS NOT NULL
    GROUP BY 2
    UNION ALL
    SELECT d.histogram, d.label || '|' || guard.histogram_bucket(d.histogram, d.seconds), count(*)
    FROM durations AS d GROUP BY 1, 2
    UNION ALL
    SELECT d.histogram, d.label || '|sum_us', sum(round(d.seconds * 1e6))::bigint
    FROM durations AS d GROUP BY d.histogram, d.label
    UNION ALL
    -- every circuit PostgreSQL knows from 0, as the checks above
    SELECT 'breaker_recovery', s.key || '|sum_us', 0 FROM guard.breaker_state AS s
    UNION ALL
    -- every outcome and result from 0, and the timed outcomes' histograms
    SELECT z.counter, z.label, 0 FROM (VALUES
        ('bookings', 'booked'), ('bookings', 'recovered'), ('bookings', 'failed'),
        ('bookings', 'queued'), ('validations', 'passed'), ('validations', 'failed'),
        ('booking_retries', 'not_retried'), ('booking_retries', 'succeeded_after_retry'),
        ('booking_retries', 'exhausted'), ('booking_duration', 'booked|sum_us'),
        ('booking_duration', 'failed|sum_us'), ('booking_duration', 'queued|sum_us')
    ) AS z (counter, label)
), named (counter, family, label) AS (VALUES
    ('bookings', 'guard_bookings', 'outcome'), ('validations', 'guard_validations', 'result'),
    ('validation_failures', 'guard_validation_failures', 'reason'),
    ('alerts_opened', 'guard_alerts_opened', 'check_id'),
    ('booking_retries', 'guard_booking_retries', 'outcome'),
    ('booking_duration', 'guard_booking_duration_seconds', 'outcome'),
    ('breaker_recovery', 'guard_breaker_recovery_seconds', 'key')
), buckets AS MATERIALIZED (
    -- a histogram's labels are `<group>|<bound>`, `<group>|+Inf` and `<group>|sum_us`
    -- (guard.histogram_bucket); a bucket whose bound is no longer defined (bounds changed since
    -- it was folded) lands in +Inf only, so that the count stays whole
    SELECT c.counter, substring(c.label FROM '^(.*)\|') AS grp,
        CASE WHEN c.label NOT LIKE '%%|sum_us' THEN substring(c.label FROM '[^|]*$')::float8 END
            AS bound,
        sum(c.n) AS n
    FROM counts AS c WHERE c.counter IN ('booking_duration', 'breaker_recovery')
    GROUP BY 1, 2, 3
), histograms AS (
    SELECT b.counter, b.grp, coalesce(sum(b.n) FILTER (WHERE b.bound IS NOT NULL), 0) AS n,
        coalesce(sum(b.n) FILTER (WHERE b.bound IS NULL), 0)::float8 / 1e6::float8 AS seconds
    FROM buckets AS b GROUP BY 1, 2
)
SELECT r.family, r.sample, r.labels, r.value FROM (
    SELECT f.family, '_total', jsonb_build_object(f.label, c.label)
        || CASE WHEN c.counter = 'alerts_opened' THEN jsonb_build_object(
            'rule_id', coalesce(k.rule_id, '(unknown)')
        ) ELSE '{}' END,
        sum(c.n)::float8, coalesce(k.rule_id, '(unknown)'), c.label, 0
    FROM counts AS c INNER JOIN named AS f ON c.counter = f.counter
    LEFT JOIN guard.checks AS k ON c.counter = 'alerts_opened' AND c.label = k.id
    WHERE c.counter NOT IN ('booking_duration', 'breaker_recovery')
    GROUP BY f.family, f.label, c.counter, c.label, k.rule_id
    UNION ALL
    SELECT f.family, '_bucket', jsonb_build_object(
        f.label, h.grp, 'le', regexp_replace(x.bound::text, '^(\d+)$', '\1.0')
    ), (
        SELECT coalesce(sum(b.n), 0) FROM buckets AS b
        WHERE b.counter = h.counter AND b.grp = h.grp AND b.bound <= x.bound
            AND b.bound = ANY(guard.histogram_bounds(h.counter))
    )::float8, h.grp, '', x.n
    FROM histograms AS h INNER JOIN named AS f ON h.counter = f.counter
    CROSS JOIN unnest(guard.histogram_bounds(h.counter)) WITH ORDINALITY AS x (bound, n)
    UNION ALL
    SELECT f.family, y.sample, jsonb_build_object(f.label, h.grp) || y.labels, y.value, h.grp, '',
        y.n
    FROM histograms AS h INNER JOIN named AS f ON h.counter = f.counter
    CROSS JOIN LATERAL (VALUES
        ('_bucket', '{"le": "+Inf"}'::jsonb, h.n::float8, 100),
        ('_count', '{}', h.n::float8, 101),
        ('_sum', '{}', h.seconds, 102)
    ) AS y (sample, labels, value, n)
) AS r (family, sample, labels, value, rule_id, label, n)
ORDER BY r.rule_id COLLATE "C", r.label COLLATE "C", r.n  -- noqa: RF02, RF03

-- name: METRIC_TRANSACTION_SETTINGS
-- The settings of every transaction of a scrape, in one round trip, local to the transaction
-- (`is_local`): a session-level SET would stay on a pooled server connection (PgBouncer in
-- transaction mode) and make the next client's writes fail as read-only. A scrape's queries are
-- index probes whose cost estimates can still pass jit_above_cost; compiling them took 200 ms of
-- a 45 ms query. The KPIs' percentiles sort a day of rows (a million validations): at the default
-- work_mem that sort went to disk, so a scrape's transaction has 64 MB for one (or the login's
-- work_mem, when that is more).
-- The statement_timeout is --statement-timeout-ms or the login's, whichever is
-- lower (a DBA's limit is never raised); the first column says whether the login's applies.
SELECT s.setting::bigint BETWEEN 1 AND %(timeout)s,
    set_config('statement_timeout', least(nullif(s.setting::bigint, 0), %(timeout)s)::text, TRUE),
    set_config('jit', 'off', TRUE),
    set_config('work_mem', greatest((
        SELECT w.setting::bigint FROM pg_catalog.pg_settings AS w WHERE w.name = 'work_mem'
    ), 65536)::text || 'kB', TRUE)
FROM pg_catalog.pg_settings AS s WHERE s.name = 'statement_timeout'

-- --- guard/ops/rollout.py
-- name: RULE_OVERRIDES
SELECT o.company_id, c.name, o.stage, o.mode, e.stage, e.mode, o.set_by, o.set_at  -- noqa: AL08
FROM guard.rule_company_stages AS o
LEFT JOIN public.companies AS c ON o.company_id = c.id
CROSS JOIN LATERAL guard.effective_rule_setting(o.rule_id, o.company_id) AS e
WHERE o.rule_id = %s
ORDER BY o.company_id

-- name: RULE_LIST
SELECT r.id, r.stage, r.mode, r.enabled, count(o.company_id)::integer
FROM guard.rules AS r
LEFT JOIN guard.rule_company_stages AS o ON r.id = o.rule_id
GROUP BY r.id
ORDER BY r.id

-- name: RULE_STATE
-- I4 has no mode: guard.reconcile rolls a phantom booking back by stage (guard.rollout_set).
SELECT stage, CASE WHEN id <> 'I4_booked_outcome' THEN mode END, enabled, guard.rollout_rule(id)
FROM guard.rules WHERE id = %s

-- name: ROLLOUT_SET
SELECT guard.rollout_set(%s, %s, %s, %s::bigint[], %s::integer)

-- name: ROLLOUT_CLEAR
SELECT guard.rollout_clear(%s, %s, %s::bigint[], %s::integer)

-- --- guard/demo/sample_data.py
-- name: CALL_COUNT
SELECT count(*) FROM public.calls

-- name: IS_SUPERUSER
SELECT rolsuper FROM pg_roles WHERE rolname = current_user

-- name: SET_REPLICA_ROLE
SET LOCAL session_replication_role = replica

-- name: SET_SEED
SELECT setseed(%s)

-- name: INSERT_SAMPLE_COMPANIES
INSERT INTO public.companies (name) SELECT unnest(%s::text[]) RETURNING id

-- name: SAMPLE_SERVICES
-- The statements SAMPLE_SERVICES to SAMPLE_APPOINTMENTS draw the demo's data set in order (their
-- %(name)s parameters: those of guard/demo/sample_data.py): each company's services and
-- customers, then its calls, each with at most one problem (drawn by the cumulative shares
-- %(uppers)s of %(problems)s; the newest two hours none: a booking failure there would be a
-- finding of its own), and their appointments.
INSERT INTO public.services (company_id, name, duration_minutes)
SELECT c, s, (ARRAY[15, 30, 45, 60])[1 + floor(random() * cardinality(ARRAY[15, 30, 45, 60]))::integer]
FROM unnest(%(companies)s::bigint[]) AS c CROSS JOIN unnest(%(services)s::text[]) AS s

-- name: SAMPLE_CUSTOMERS
INSERT INTO public.customers (company_id, name, phone)
SELECT c, 'Kunde ' || c || '-' || g, '+49 30 ' || (1000000 + floor(random() * 8999999))
FROM unnest(%(companies)s::bigint[]) AS c
CROSS JOIN generate_series(0, %(customers)s - 1) AS g

-- name: SAMPLE_COMPANY_TABLE
CREATE TEMP TABLE sample_company ON COMMIT DROP AS
SELECT
    c.id AS company_id,
    c.n,
    (SELECT array_agg(u.id ORDER BY u.id) FROM public.customers AS u WHERE u.company_id = c.id)
        AS customers,
    (SELECT array_agg(s.id ORDER BY s.id) FROM public.services AS s WHERE s.company_id = c.id)
        AS services
FROM unnest(%(companies)s::bigint[]) WITH ORDINALITY AS c (id, n)

-- name: SAMPLE_CALL_TABLE
CREATE TEMP TABLE sample_call ON COMMIT DROP AS
SELECT
    d.*,
    'bk_' || substr(d.call_ref, 6) AS uid,
    d.customer_id IS NOT NULL AND d.problem <> 'incomplete_customer_link' AS linked,
    CASE
        WHEN d.problem IN ('phantom_booking', 'flag_mismatch', 'contradicting_flags',
            'orphaned_appointment') OR d.shape < 0.45 THEN 'appointment_booked'
        WHEN d.problem = 'booking_failure' THEN 'creation_failed'
        WHEN d.shape < 0.50 THEN 'appointment_cancelled'
        ELSE (ARRAY['information_only', 'no_availability', 'caller_hung_up', 'callback'])
            [1 + floor(random() * 4)::integer]
    END AS session_outcome,
    d.problem IN ('phantom_booking', 'contradicting_flags') OR d.shape < 0.45 AS booked,
    d.problem IN ('contradicting_flags', 'booking_failure') AS failed,
    CASE
        WHEN d.problem IN ('flag_mismatch', 'contradicting_flags') OR d.shape < 0.50 THEN 'linked'
        WHEN d.problem = 'orphaned_appointment' THEN 'orphaned'
    END AS appointment
FROM (
    SELECT
        nextval(pg_get_serial_sequence('public.calls', 'id')) AS id,
        k.company_id,
        'call_' || k.company_id || '_' || lpad(g::text, 5, '0') AS call_ref,
        -- the newest 10 minutes old (no booking claimed inside its grace period); a company's
        -- calls 36 minutes apart, so that their 30-minute appointments 3 days on never overlap
        date_trunc('second', now()) - make_interval(secs => 600 + (%(days)s * 86400 - 600)
            * (g * cardinality(%(companies)s::bigint[]) + k.n - 1)
            / (%(calls)s * cardinality(%(companies)s::bigint[]))) AS created,
        p.problem,
        CASE WHEN p.problem = 'incomplete_customer_link' OR random() < 0.85
            THEN (k.customers)[1 + floor(random() * cardinality(k.customers))::integer]
        END AS customer_id,
        (k.services)[1 + floor(random() * cardinality(k.services))::integer] AS service_id,
        CASE WHEN p.problem = 'none' THEN random() ELSE 1 END AS shape,
        CASE WHEN p.problem = 'missing_direction' THEN NULL
            WHEN random() < 0.9 THEN 'inbound' ELSE 'outbound' END AS direction,
        make_interval(secs => 5 + floor(random() * 85)) AS booked_after
    FROM sample_company AS k
    CROSS JOIN generate_series(0, %(calls)s - 1) AS g
    CROSS JOIN LATERAL (
        SELECT coalesce((
            SELECT q.problem
            FROM unnest(%(problems)s::text[], %(uppers)s::float8[]) WITH ORDINALITY AS q (problem, upper, n)
            WHERE x.r < q.upper ORDER BY q.n LIMIT 1
        ), 'none') AS problem
        FROM (SELECT CASE WHEN g >= 4 THEN random() ELSE 1 END AS r) AS x
    ) AS p
    ORDER BY k.n, g
) AS d

-- name: SAMPLE_CALLS
-- Appended to CALLS_INSERT_HEAD.
SELECT
    c.id, c.company_id, c.call_ref, '+49 30 ' || (1000000 + floor(random() * 8999999)),
    '+49 30 5550000', 'ended', c.direction, c.customer_id,
    CASE WHEN c.linked THEN 'linked' WHEN c.customer_id IS NULL THEN 'unlinked' END,
    CASE WHEN c.linked THEN 'phone_match' END,
    CASE WHEN c.linked THEN 100.0 END,
    CASE WHEN c.linked THEN c.created END,
    c.session_outcome, c.booked,
    CASE WHEN c.booked THEN 'linked' END,
    CASE WHEN c.booked THEN c.created + interval '30 seconds' END,
    CASE WHEN c.booked OR c.appointment IS NOT NULL THEN c.uid END,
    c.booked AND NOT c.failed, c.failed,
    CASE WHEN c.failed THEN 'calendar_error: slot no longer available' END,
    c.failed, c.created, c.created  -- noqa: AL08
FROM sample_call AS c
ORDER BY c.id

-- name: SAMPLE_APPOINTMENTS
INSERT INTO public.appointments (
    company_id, call_id, customer_id, service_id, calcom_v2_booking_id, source, status,
    starts_at, ends_at, created_at, updated_at
)
SELECT
    c.company_id, CASE WHEN c.appointment = 'linked' THEN c.id END, c.customer_id,
    c.service_id, c.uid, 'retell_webhook',
    CASE WHEN c.session_outcome = 'appointment_cancelled' THEN 'cancelled' ELSE 'scheduled' END,
    c.created + interval '3 days', c.created + interval '3 days 30 minutes',
    c.created + c.booked_after, c.created + c.booked_after
FROM sample_call AS c
WHERE c.appointment IS NOT NULL
UNION ALL
-- entered by hand at the desk, after every booked one: no call, and that is fine
SELECT
    k.company_id, NULL, (k.customers)[1 + floor(random() * cardinality(k.customers))::integer],
    (k.services)[1 + floor(random() * cardinality(k.services))::integer], NULL, 'manual', 'scheduled',
    date_trunc('day', now()) + make_interval(days => 4 + m / 8, hours => 8 + m %% 8),
    date_trunc('day', now()) + make_interval(days => 4 + m / 8, hours => 8 + m %% 8, mins => 30),
    date_trunc('second', now()) - make_interval(days => 1 + m %% 19),
    date_trunc('second', now()) - make_interval(days => 1 + m %% 19)
FROM sample_company AS k
CROSS JOIN generate_series(0, %(manual)s - 1) AS m

-- name: SAMPLE_KINDS
-- What SAMPLE_SERVICES to SAMPLE_APPOINTMENTS drew, by kind: the problems, the look-alikes and the totals.
SELECT k.kind, count(*) FROM (
    SELECT c.problem FROM sample_call AS c WHERE c.problem <> 'none'
    UNION ALL
    SELECT 'cancelled_appointment' FROM sample_call AS c
    WHERE c.session_outcome = 'appointment_cancelled'
    UNION ALL
    SELECT 'calls' FROM sample_call
    UNION ALL
    SELECT 'manual_appointment_without_call' FROM public.appointments AS a
    WHERE a.source = 'manual'
    UNION ALL
    SELECT 'appointments' FROM public.appointments
) AS k (kind)
GROUP BY k.kind

-- name: CALLS_INSERT_HEAD
-- The columns of a legacy application's call that the sample data and the benchmarks fill.
INSERT INTO public.calls (
    id, company_id, retell_call_id, from_number, to_number, status, direction, customer_id,
    customer_link_status, customer_link_method, customer_link_confidence, customer_linked_at,
    session_outcome, appointment_made, appointment_link_status, appointment_linked_at,
    booking_id, booking_confirmed, booking_failed, booking_failure_reason,
    requires_manual_processing, created_at, updated_at
)
