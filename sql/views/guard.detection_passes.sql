-- One row per windowed detection pass (guard.detection_runs by pass): when it ran, over which
-- window (NULL: the whole history, guard.run_detection('-infinity')), how long its checks took and what they
-- found, opened and resolved. For BI: detection's own health over time (a pass getting slower, a
-- check that suddenly finds thousands). Counts span every company, like the job runs.
CREATE OR REPLACE VIEW guard.detection_passes WITH (security_invoker = TRUE) AS
SELECT
    d.pass_started_at,
    d.window_start,
    d.run_by,
    count(*)::integer AS checks,
    round(sum(d.duration_ms)::numeric, 3) AS duration_ms,
    sum(d.offending)::integer AS offending,
    sum(d.opened)::integer AS opened,
    sum(d.repeated)::integer AS repeated,
    sum(d.resolved)::integer AS resolved,
    coalesce(
        jsonb_object_agg(d.check_id, d.offending) FILTER (WHERE d.offending > 0), '{}'
    ) AS offending_by_check,
    count(*) FILTER (WHERE d.outcome = 'warn')::integer AS checks_warned,
    count(*) FILTER (WHERE d.outcome = 'fail')::integer AS checks_failed
FROM guard.detection_runs AS d
GROUP BY d.pass_started_at, d.window_start, d.run_by;
