-- The design's KPIs, each with its target (from guard.settings), current value and status:
-- ok (target met), breach (missed) or no_data (nothing to measure in the window).
-- consistency_rate: calls created in the last 24 h without an open alert about them.
-- validation_latency_p95: p95 of validate_booking latency, last 24 h.
-- breaker_recovery_time: mean time from a circuit opening (closed -> open) to closing again
-- (half_open -> closed), for closings in the last 7 days.
-- auto_correction_rate: corrections / (corrections + review items created), last 7 days.
-- review_queue_size: open and claimed review items now.
-- false_positive_rate: items dismissed as false positives / items closed, last 30 days.
-- detection_latency_p95: p95 of first_seen_at - written_at (the row's last write; observed_at
-- where that is unknown) of the alerts detection opened in the last 24 h: the commit that made a
-- row bad -> its alert (a phantom booking waits for the grace period, counted from that write).
-- Counted from the call's creation it held the call's length too, and could not be held to
-- the minute detection promises (target_detection_latency_seconds).
-- alert_response_p95: p95 of delivered_at - first_seen_at of the alerts opened in the last 24 h
-- (opened -> delivered on every channel); one not yet delivered counts with its age, so a
-- dispatcher that is down shows as a breach, not as no data. Job alerts are left out of both.
CREATE OR REPLACE VIEW guard.kpis WITH (security_invoker = TRUE) AS
-- The calls with an open alert, joined (read once, hashed): a NOT EXISTS in the aggregate's
-- FILTER stays a subplan run for every call of the day, each a walk of the open-alert index
-- (check_id leads it), so its cost grew with calls times open alerts.
WITH open_call_alert AS (
    SELECT DISTINCT a.entity_id
    FROM guard.alerts AS a
    WHERE a.status = 'open' AND a.entity_type = 'call'
),

measured AS (
    SELECT
        'consistency_rate' AS kpi,
        'Calls of the last 24 h without an open alert' AS description,
        guard.setting('target_consistency_rate_pct')::numeric AS target,
        '>=' AS comparison,
        round(
            100.0 * count(*) FILTER (WHERE open_alert.entity_id IS NULL) / nullif(count(*), 0), 2
        ) AS current_value,
        'percent' AS unit,
        '24 hours' AS time_window,
        count(*) AS sample_size
    FROM public.calls AS c
    LEFT JOIN open_call_alert AS open_alert ON c.id = open_alert.entity_id
    WHERE
        c.created_at >= guard.to_app_time(
            now() - interval '24 hours',
            -- the column's type (guard.to_app_time): never read
            (SELECT x.created_at FROM public.calls AS x LIMIT 0),  -- noqa: AM09
            (SELECT guard.app_time_zone())
        )
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
        AND closing.occurred_at >= now() - interval '168 hours'
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
            WHERE ca.corrected_at >= now() - interval '168 hours'
        ) AS fixes,
        (
            SELECT count(*) AS n FROM guard.review_items AS ri
            WHERE ri.created_at >= now() - interval '168 hours'
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
    WHERE ri.status IN ('resolved', 'dismissed') AND ri.closed_at >= now() - interval '720 hours'
    UNION ALL
    SELECT
        'detection_latency_p95' AS kpi,
        'Time from a bad row being written to its alert, 95th percentile' AS description,
        guard.setting('target_detection_latency_seconds')::numeric AS target,
        '<=' AS comparison,
        round((percentile_cont(0.95) WITHIN GROUP (
            ORDER BY extract(EPOCH FROM a.first_seen_at - coalesce(a.written_at, a.observed_at))
        ))::numeric, 2) AS current_value,
        'seconds' AS unit,
        '24 hours' AS time_window,
        count(*) AS sample_size
    FROM guard.alerts AS a
    WHERE
        a.first_seen_at >= now() - interval '24 hours'
        AND a.observed_at IS NOT NULL
        AND a.entity_type <> 'job'
    UNION ALL
    SELECT
        'alert_response_p95' AS kpi,
        'Time from an alert being opened to its delivery, 95th percentile' AS description,
        guard.setting('target_alert_response_seconds')::numeric AS target,
        '<=' AS comparison,
        round((percentile_cont(0.95) WITHIN GROUP (
            ORDER BY extract(EPOCH FROM coalesce(a.delivered_at, now()) - a.first_seen_at)
        ))::numeric, 2) AS current_value,
        'seconds' AS unit,
        '24 hours' AS time_window,
        count(*) AS sample_size
    FROM guard.alerts AS a
    WHERE a.first_seen_at >= now() - interval '24 hours' AND a.entity_type <> 'job'
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
