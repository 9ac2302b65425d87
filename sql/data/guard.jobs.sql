-- The design's schedule (times in UTC). Commands are fixed SQL run by guard.run_job.
INSERT INTO guard.jobs AS j (name, schedule, interval_seconds, command, description) VALUES
(
    'detect', '*/5 * * * *', 300, 'SELECT count(*) FROM guard.detect()',
    'One detection pass: every rule, alerts de-duplicated and auto-resolved.'
),
(
    'detect_queue', '15 seconds', 60, 'SELECT guard.drain_detection_queue()',
    'Check the calls queued at commit (the fallback when no guard watch drains the queue).'
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
    'sweep', '27 * * * *', 3600, 'SELECT count(*) FROM guard.sweep_checks()',
    'Read the whole view of every check marked sweep (rows an update made bad after the window).'
),
(
    'daily_report', '0 2 * * *', 86400,
    'SELECT count(*) FROM guard.daily_report(CAST(timezone(''UTC'', now()) AS date) - 1)',
    'Store yesterday''s report (UTC day) for every company.'
),
(
    'retention', '30 3 * * *', 86400, 'SELECT count(*) FROM guard.apply_retention()',
    'Delete resolved alerts, breaker events, validation metrics, detection runs and job runs '
    || 'past retention.'
)
ON CONFLICT (name) DO UPDATE SET
    command = excluded.command,
    description = excluded.description
WHERE (j.command, j.description) IS DISTINCT FROM (excluded.command, excluded.description);
