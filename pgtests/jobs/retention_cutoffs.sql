-- guard.apply_retention at its cutoffs: a resolved alert exactly as old as retention_alerts_days
-- is kept (deleted only when older), and so is one first seen exactly at the fold's watermark
-- (an hour ago: no fold has counted it yet); a validation sample exactly as old as
-- retention_validation_metrics_days is kept, and so is a detection run exactly as old as
-- retention_detection_runs_days; a closed item's review notice and a digest's record exactly as
-- old as retention_alerts_days (a claimed item's notice is kept whatever its age, as an open
-- one's), and a job run exactly as old as retention_job_runs_days (not
-- the job's newest), too.
BEGIN;
SELECT plan(7);

UPDATE guard.metric_watermark SET folded_before = '-infinity';
UPDATE guard.settings SET value = '0'
WHERE key = 'retention_alerts_days';
UPDATE guard.settings SET value = '1'
WHERE key = 'retention_validation_metrics_days';
INSERT INTO guard.alerts (
    fingerprint, check_id, entity_type, severity, message, status, first_seen_at, last_seen_at,
    resolved_at, resolution
)
SELECT
    'retention:' || x.name,
    'retention_edge',
    'job',
    'low',
    x.name,
    'resolved',
    now() - x.first_seen,
    now() - x.first_seen,
    now() - x.resolved,
    'fixed'
FROM (
    VALUES
    ('resolved exactly at the cutoff', interval '3 days', interval '0'),
    ('resolved before the cutoff', interval '3 days', interval '1 microsecond'),
    ('first seen at the watermark', interval '1 hour', interval '1 microsecond'),
    ('first seen before the watermark', interval '1 hour 1 microsecond', interval '1 microsecond')
) AS x (name, first_seen, resolved);
UPDATE guard.settings SET value = '1'
WHERE key = 'retention_detection_runs_days';
INSERT INTO guard.detection_runs (
    pass_started_at, check_id, rule_id, duration_ms, offending, opened, repeated, resolved
) VALUES
(now() - interval '1 day', 'unknown_value', 'I8_known_values', 1, 0, 0, 0, 0),
(now() - interval '1 day 1 microsecond', 'unknown_value', 'I8_known_values', 2, 0, 0, 0, 0);
INSERT INTO guard.review_items (id, reason, status, closed_at)
OVERRIDING SYSTEM VALUE
VALUES (10001, 'other', 'dismissed', now()), (10002, 'other', 'dismissed', now());
INSERT INTO guard.review_items (id, reason, status, claimed_by, claimed_at)
OVERRIDING SYSTEM VALUE
VALUES (10003, 'other', 'claimed', 'ann', now() - interval '3 days');
INSERT INTO guard.deliveries (kind, subject, channel, status, delivered_at, created_at) VALUES
('review_notice', 10001, 'webhook', 'delivered', now(), now()),
('review_notice', 10002, 'webhook', 'delivered', now(), now() - interval '1 microsecond'),
('review_notice', 10003, 'webhook', 'delivered', now() - interval '3 days', now() - interval '3 days');
INSERT INTO guard.alert_digests (channel, period_end, alerts, sent_at) VALUES
('email', now(), 1, now()),
('email', now() - interval '1 microsecond', 2, now() - interval '1 microsecond');
UPDATE guard.settings SET value = '1'
WHERE key = 'retention_job_runs_days';
INSERT INTO guard.job_runs (job_name, started_at, finished_at, status, error, duration_ms) VALUES
('edge_job', now() - interval '1 day 1 microsecond', now() - interval '1 day 1 microsecond', 'failed', 'x', 1),
('edge_job', now() - interval '1 day', now() - interval '1 day', 'failed', 'x', 2),
('edge_job', now() - interval '1 hour', now() - interval '1 hour', 'succeeded', NULL, 3);
INSERT INTO guard.validation_metrics (ok, latency_ms, measured_at) VALUES
(TRUE, 1, now() - interval '1 day'),
(TRUE, 2, now() - interval '1 day 1 microsecond');

SELECT results_eq(
    $$SELECT target, deleted FROM guard.apply_retention()
      WHERE target IN ('guard.alerts', 'guard.validation_metrics') ORDER BY target$$,
    $$VALUES ('guard.alerts', 2::bigint), ('guard.validation_metrics', 1::bigint)$$,
    'apply_retention deletes two alerts and one sample'
);
SELECT results_eq(
    $$SELECT message FROM guard.alerts WHERE check_id = 'retention_edge' ORDER BY message$$,
    $$VALUES ('first seen at the watermark'), ('resolved exactly at the cutoff')$$,
    'apply_retention keeps an alert resolved exactly at the cutoff and one first seen exactly at '
    'the watermark'
);
SELECT results_eq(
    $$SELECT latency_ms FROM guard.validation_metrics$$,
    $$VALUES (1::double precision)$$,
    'apply_retention keeps a sample exactly as old as its retention'
);
SELECT results_eq(
    $$SELECT duration_ms FROM guard.detection_runs$$,
    $$VALUES (1::double precision)$$,
    'apply_retention keeps a detection run exactly as old as its retention'
);
SELECT results_eq(
    $$SELECT subject FROM guard.deliveries
      WHERE kind = 'review_notice' AND subject IN (10001, 10002, 10003) ORDER BY subject$$,
    $$VALUES (10001::bigint), (10003)$$,
    'apply_retention keeps a closed item''s notice exactly as old as its retention, and a '
    'claimed item''s'
);
SELECT results_eq(
    $$SELECT alerts FROM guard.alert_digests$$,
    $$VALUES (1)$$,
    'apply_retention keeps a digest''s record exactly as old as its retention'
);
SELECT results_eq(
    $$SELECT duration_ms FROM guard.job_runs WHERE job_name = 'edge_job' ORDER BY started_at$$,
    $$VALUES (2::double precision), (3)$$,
    'apply_retention keeps a job run exactly as old as its retention'
);

SELECT * FROM finish();
ROLLBACK;
