-- Each job with its heartbeat: the newest run, the newest success, when it is next due for an
-- external runner (last start + interval) and whether it is overdue (no success within twice its
-- interval, counted from the job's last change when it never succeeded since).
CREATE OR REPLACE VIEW guard.job_status WITH (security_invoker = TRUE) AS
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
