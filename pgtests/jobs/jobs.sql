-- Scheduled jobs without pg_cron: the seeded schedule, guard.schedule_jobs' message, run_job's
-- heartbeat, a failure recorded (and alerted) although the job's work rolled back, the alert
-- resolved by the next success, the missed-run check, and retention. (The advisory locks that
-- turn a concurrent second run into a no-op, and let a run skip the missed-run check while
-- another session's check is in progress, are tested from Python: a transaction-level lock is
-- re-entrant within one session.)
BEGIN;
SELECT plan(39);

SELECT results_eq(
    $$SELECT name, schedule, interval_seconds, enabled FROM guard.jobs ORDER BY name$$,
    $$VALUES ('daily_report', '0 2 * * *', 86400, TRUE), ('detect', '*/5 * * * *', 300, TRUE),
             ('detect_queue', '15 seconds', 60, TRUE),
             ('reconcile', '0 * * * *', 3600, TRUE), ('retention', '30 3 * * *', 86400, TRUE),
             ('review_sweep', '10 * * * *', 3600, TRUE), ('sweep', '27 * * * *', 3600, TRUE)$$,
    'the design''s schedule: detect every 5 min, the queue every 15 s, reconcile and both sweeps '
    'hourly, report 02:00 UTC'
);
SELECT results_eq(
    $$SELECT k.id, k.remedy, k.rule_id, r.invariant, k.check_view
      FROM guard.checks AS k INNER JOIN guard.rules AS r ON k.rule_id = r.id
      WHERE k.id IN ('job_failed', 'job_missed') ORDER BY k.id$$,
    $$VALUES ('job_failed', 'report', 'job_health', NULL::text, NULL::text),
             ('job_missed', 'report', 'job_health', NULL, NULL)$$,
    'job alerts are checks of the operational rule job_health (no invariant, no check view)'
);
SELECT is(
    guard.schedule_jobs(),
    'pg_cron is not installed in this database: schedule skipped; '
    || 'run `guard jobs run` to run the jobs from outside',
    'without pg_cron scheduling is skipped with a clear message'
);

-- A successful run leaves a heartbeat.
SELECT matches(
    guard.run_job('daily_report'), '^daily_report: succeeded in [0-9]+ ms$', 'run_job reports success'
);
SELECT results_eq(
    $$SELECT job_name, status, error IS NULL, finished_at >= started_at FROM guard.job_runs$$,
    $$VALUES ('daily_report', 'succeeded', TRUE, TRUE)$$,
    'one heartbeat row: succeeded, no error'
);
SELECT results_eq(
    $$SELECT last_status, last_success_at IS NOT NULL, overdue FROM guard.job_status
      WHERE job_name = 'daily_report'$$,
    $$VALUES ('succeeded', TRUE, FALSE)$$,
    'job_status shows the last run and success'
);
SELECT throws_ok(
    $$SELECT guard.run_job('no_such_job')$$, '42704', 'unknown Booking Guard job "no_such_job"',
    'an unknown job is an error'
);

-- A failing job: it writes, then fails. The write rolls back, the failure is recorded.
INSERT INTO guard.jobs (name, schedule, interval_seconds, command, description) VALUES (
    'broken', '* * * * *', 60,
    'WITH w AS (UPDATE guard.settings SET value = ''999'' WHERE key = ''anomaly_min_failures'''
    || ' RETURNING 1) SELECT 1 / (count(*) - 1) FROM w',
    'test job that fails after writing'
);
SELECT matches(
    guard.run_job('broken'), '^broken: failed after [0-9]+ ms: division by zero$',
    'run_job reports the failure instead of raising it'
);
SELECT is(guard.setting('anomaly_min_failures'), '5'::jsonb, 'the failed job''s work rolled back');
SELECT results_eq(
    $$SELECT status, error, sqlstate FROM guard.job_runs WHERE job_name = 'broken'$$,
    $$VALUES ('failed', 'division by zero', '22012')$$,
    'the failure is recorded with its error'
);
SELECT results_eq(
    $$SELECT check_id, entity_type, severity, status, occurrences, details ->> 'job'
      FROM guard.alerts WHERE fingerprint = 'job_failed:job:broken'$$,
    $$VALUES ('job_failed', 'job', 'high', 'open', 1, 'broken')$$,
    'a failed run raises a job_failed alert'
);
SELECT matches(guard.run_job('broken'), 'failed', 'it fails again');
SELECT results_eq(
    $$SELECT count(*)::int, max(occurrences) FROM guard.alerts WHERE fingerprint = 'job_failed:job:broken'$$,
    $$VALUES (1, 2)$$,
    'a repeated failure bumps the open alert instead of adding one'
);
UPDATE guard.jobs SET command = 'SELECT 1'
WHERE name = 'broken';
SELECT matches(guard.run_job('broken'), '^broken: succeeded', 'fixed, it succeeds');
SELECT results_eq(
    $$SELECT status, resolution FROM guard.alerts WHERE fingerprint = 'job_failed:job:broken'$$,
    $$VALUES ('resolved', 'fixed')$$,
    'the next success resolves the job_failed alert'
);

-- Missed runs: a job without a success within twice its interval.
INSERT INTO guard.jobs (name, schedule, interval_seconds, command, description, updated_at)
VALUES ('stale', '* * * * *', 60, 'SELECT 1', 'test job', now() - interval '1 hour');
SELECT ok(guard.check_job_heartbeats() >= 1, 'the check counts the overdue job');
SELECT ok(
    (
        SELECT overdue FROM guard.job_status
        WHERE job_name = 'stale'
    ), 'job_status marks it overdue'
);
SELECT results_eq(
    $$SELECT check_id, status FROM guard.alerts WHERE fingerprint = 'job_missed:job:stale'$$,
    $$VALUES ('job_missed', 'open')$$,
    'a missed job raises a job_missed alert'
);
SELECT ok(guard.check_job_heartbeats() >= 1, 'the check runs again, the job still overdue');
SELECT results_eq(
    $$SELECT count(*)::int, max(occurrences) FROM guard.alerts WHERE fingerprint = 'job_missed:job:stale'$$,
    $$VALUES (1, 2)$$,
    'a repeated check bumps the open job_missed alert instead of adding one'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.alerts
        WHERE fingerprint = 'job_missed:job:broken'
    ),
    0,
    'a job inside its grace period is not missed'
);
SELECT matches(guard.run_job('stale'), 'succeeded', 'the late job runs');
SELECT results_eq(
    $$SELECT status, resolution FROM guard.alerts WHERE fingerprint = 'job_missed:job:stale'$$,
    $$VALUES ('resolved', 'fixed')$$,
    'its success resolves the job_missed alert (run_job ends with the check)'
);

-- A job_missed alert left open for a job that is not overdue (a check in another session could
-- not see its success yet, and the job's own check was skipped): the next check resolves it.
INSERT INTO guard.alerts (fingerprint, check_id, entity_type, severity, message, details)
VALUES ('job_missed:job:daily_report', 'job_missed', 'job', 'high', 'left open', '{"job": "daily_report"}');
SELECT ok(guard.check_job_heartbeats() IS NOT NULL, 'the check runs (NULL only when another session checks)');
SELECT results_eq(
    $$SELECT status, resolution FROM guard.alerts WHERE fingerprint = 'job_missed:job:daily_report'$$,
    $$VALUES ('resolved', 'fixed')$$,
    'an open job_missed alert of a job that is not overdue is resolved by the next check'
);

-- A job deleted while its job_missed alert is open: nothing will run it again, so the next
-- check resolves the alert as superseded (it would otherwise stay open for ever).
INSERT INTO guard.jobs (name, schedule, interval_seconds, command, description, updated_at)
VALUES ('retired', '* * * * *', 60, 'SELECT 1', 'test job', now() - interval '1 hour');
SELECT ok(guard.check_job_heartbeats() >= 1, 'the retired job is overdue first');
DELETE FROM guard.jobs
WHERE name = 'retired';
SELECT ok(guard.check_job_heartbeats() IS NOT NULL, 'the check runs after the job is deleted');
SELECT results_eq(
    $$SELECT status, resolution FROM guard.alerts WHERE fingerprint = 'job_missed:job:retired'$$,
    $$VALUES ('resolved', 'superseded')$$,
    'the job_missed alert of a deleted job is resolved as superseded'
);

-- Retention.
INSERT INTO guard.alerts (
    fingerprint, check_id, entity_type, severity, message, status, first_seen_at, last_seen_at,
    resolved_at, resolution
) VALUES
(
    'r:old', 'call_without_direction', 'call', 'low', 'x', 'resolved', now() - interval '200 days',
    now() - interval '200 days', now() - interval '100 days', 'fixed'
),
(
    'r:recent', 'call_without_direction', 'call', 'low', 'x', 'resolved', now() - interval '200 days',
    now() - interval '200 days', now() - interval '10 days', 'fixed'
),
(
    'r:open', 'call_without_direction', 'call', 'low', 'x', 'open', now() - interval '200 days',
    now() - interval '200 days', NULL, NULL
);
-- Deliveries and resolved notices of a deleted alert go with it; a kept alert keeps its own.
INSERT INTO guard.deliveries (kind, subject, channel, status, delivered_at)
SELECT
    'alert',
    a.id,
    'webhook',
    'delivered',
    now() - interval '150 days'
FROM guard.alerts AS a
WHERE a.fingerprint IN ('r:old', 'r:recent');
INSERT INTO guard.deliveries (kind, subject, channel, status, delivered_at)
SELECT
    'alert_resolved',
    a.id,
    'webhook',
    'delivered',
    now() - interval '100 days'
FROM guard.alerts AS a
WHERE a.fingerprint IN ('r:old', 'r:recent');
INSERT INTO guard.breaker_events (key, generation, from_state, to_state, reason, host, pid, occurred_at)
VALUES ('k', 1, 'closed', 'open', 'x', 'h', 1, now() - interval '100 days'),
-- exactly retention_breaker_events_days (90) old: not older than that, kept
('k', 2, 'open', 'half_open', 'x', 'h', 1, now() - interval '90 days'),
('k', 3, 'half_open', 'closed', 'x', 'h', 1, now() - interval '1 day');
INSERT INTO guard.validation_metrics (ok, latency_ms, measured_at)
VALUES (TRUE, 1, now() - interval '31 days'), (TRUE, 1, now() - interval '1 day');
INSERT INTO guard.job_runs (job_name, started_at, finished_at, status, error, duration_ms) VALUES
('stale', now() - interval '30 days', now() - interval '30 days', 'succeeded', NULL, 1),
('old_job', now() - interval '30 days', now() - interval '30 days', 'succeeded', NULL, 1),
('old_job', now() - interval '20 days', now() - interval '20 days', 'failed', 'x', 1);
INSERT INTO guard.detection_runs (
    pass_started_at, check_id, rule_id, duration_ms, offending, opened, repeated, resolved
) VALUES
(now() - interval '31 days', 'unknown_value', 'I8_known_values', 1, 0, 0, 0, 0),
(now() - interval '29 days', 'unknown_value', 'I8_known_values', 1, 0, 0, 0, 0);
-- Review notices: of a closed item and of an open one, both older than the alerts' retention.
INSERT INTO guard.review_items (id, call_id, reason, status, closed_at)
OVERRIDING SYSTEM VALUE VALUES
(97001, NULL, 'other', 'resolved', now() - interval '100 days'),
(97002, NULL, 'other', 'open', NULL);
INSERT INTO guard.deliveries (kind, subject, channel, status, delivered_at, created_at) VALUES
('review_notice', 97001, 'webhook', 'delivered', now() - interval '100 days', now() - interval '100 days'),
('review_notice', 97002, 'webhook', 'delivered', now() - interval '100 days', now() - interval '100 days');
-- Report deliveries: sent before the retention, sent after it, and one still pending.
-- Digests: one sent before the retention, one after.
INSERT INTO guard.deliveries (kind, subject, channel, status, delivered_at) VALUES
('report', to_char((now() AT TIME ZONE 'UTC')::date - 100, 'YYYYMMDD')::bigint, 'email', 'delivered', now() - interval '100 days'),
('report', to_char((now() AT TIME ZONE 'UTC')::date - 89, 'YYYYMMDD')::bigint, 'email', 'delivered', now() - interval '89 days'),
('report', to_char((now() AT TIME ZONE 'UTC')::date - 100, 'YYYYMMDD')::bigint, 'webhook', 'pending', NULL);
INSERT INTO guard.alert_digests (channel, period_end, alerts, sent_at) VALUES
('email', now() - interval '100 days', 3, now() - interval '100 days'),
('email', now() - interval '89 days', 2, now() - interval '89 days');
SELECT results_eq(
    $$SELECT target, deleted FROM guard.apply_retention()$$,
    $$VALUES ('guard.alerts', 1::bigint), ('guard.deliveries (alerts)', 1),
             ('guard.deliveries (resolved notices)', 1), ('guard.breaker_events', 1),
             ('guard.validation_metrics', 1),
             ('guard.detection_runs', 1), ('guard.deliveries (review notices)', 1),
             ('guard.deliveries (reports)', 1), ('guard.alert_digests', 1), ('guard.job_runs', 1)$$,
    'retention deletes what is past its setting (cron.job_run_details only where pg_cron is)'
);
SELECT results_eq(
    $$SELECT subject, channel FROM guard.deliveries WHERE kind = 'report' ORDER BY 1, 2$$,
    $$VALUES (to_char((now() AT TIME ZONE 'UTC')::date - 100, 'YYYYMMDD')::bigint, 'webhook'),
             (to_char((now() AT TIME ZONE 'UTC')::date - 89, 'YYYYMMDD')::bigint, 'email')$$,
    'a pending report delivery and a recent sent one survive retention'
);
SELECT results_eq(
    $$SELECT subject FROM guard.deliveries WHERE kind = 'report' AND channel = 'email'$$,
    $$VALUES (to_char((now() AT TIME ZONE 'UTC')::date - 89, 'YYYYMMDD')::bigint)$$,
    'only the sent delivery past retention is deleted'
);
SELECT results_eq(
    $$SELECT subject FROM guard.deliveries
      WHERE kind = 'review_notice' AND subject IN (97001, 97002)$$,
    $$VALUES (97002::bigint)$$,
    'an open item keeps its notice, so it is not announced again'
);
SELECT results_eq(
    $$SELECT fingerprint FROM guard.alerts WHERE fingerprint LIKE 'r:%' ORDER BY fingerprint$$,
    $$VALUES ('r:open'), ('r:recent')$$,
    'open alerts are never deleted, recent resolved ones are kept'
);
SELECT results_eq(
    $$SELECT a.fingerprint, d.channel, n.channel
      FROM guard.alerts AS a
      JOIN guard.deliveries AS d ON d.kind = 'alert' AND d.subject = a.id
      JOIN guard.deliveries AS n ON n.kind = 'alert_resolved' AND n.subject = a.id
      WHERE a.fingerprint LIKE 'r:%'$$,
    $$VALUES ('r:recent', 'webhook', 'webhook')$$,
    'a kept alert keeps its delivery and its resolved notice'
);
SELECT results_eq(
    $$SELECT status FROM guard.job_runs WHERE job_name = 'old_job' ORDER BY id$$,
    $$VALUES ('succeeded'), ('failed')$$,
    'a job''s newest run and newest success survive retention'
);

-- A retention shorter than the days enqueue_report_deliveries reads never deletes those days'
-- deliveries (the report would be sent again): 8 days is the least kept.
UPDATE guard.settings SET value = '1'
WHERE key = 'retention_alerts_days';
INSERT INTO guard.deliveries (kind, subject, channel, status, delivered_at) VALUES
('report', to_char((now() AT TIME ZONE 'UTC')::date - 8, 'YYYYMMDD')::bigint, 'email', 'delivered', now() - interval '8 days'),
('report', to_char((now() AT TIME ZONE 'UTC')::date - 9, 'YYYYMMDD')::bigint, 'email', 'delivered', now() - interval '9 days');
SELECT results_eq(
    $$SELECT r.deleted FROM guard.apply_retention() AS r
      WHERE r.target = 'guard.deliveries (reports)'$$,
    $$VALUES (2::bigint)$$,
    'with a 1-day retention the sent deliveries older than 8 days go (89 and 9 days)'
);
SELECT results_eq(
    $$SELECT subject FROM guard.deliveries WHERE kind = 'report' AND channel = 'email'$$,
    $$VALUES (to_char((now() AT TIME ZONE 'UTC')::date - 8, 'YYYYMMDD')::bigint)$$,
    'a delivery of a day enqueue_report_deliveries may still read is kept'
);

-- A schema named cron is not pg_cron: another tool's tables of that name, in a database without
-- the extension, are never read or deleted from by retention (tests/jobs/test_pg_cron.py: with it).
CREATE SCHEMA cron;
CREATE TABLE cron.job (jobid bigint PRIMARY KEY, jobname text NOT NULL);
CREATE TABLE cron.job_run_details (
    jobid bigint NOT NULL, start_time timestamptz, end_time timestamptz
);
INSERT INTO cron.job VALUES (1, 'guard_retention');
INSERT INTO cron.job_run_details VALUES (1, now() - interval '400 days', now() - interval '400 days');
SELECT is(
    (
        SELECT count(*)::int FROM guard.apply_retention() AS r
        WHERE r.target LIKE 'cron.%'
    ),
    0,
    'without pg_cron, retention reports nothing of a schema that is merely named cron'
);
SELECT is(
    (SELECT count(*)::int FROM cron.job_run_details),
    1,
    'and deletes nothing from it'
);

SELECT * FROM finish();
ROLLBACK;
