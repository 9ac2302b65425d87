-- Add the rows written before a horizon (an hour ago) and not yet counted to guard.metric_totals
-- and move guard.metric_watermark to that horizon, in one transaction: a scrape (totals plus the
-- rows from the watermark on) sees the same sums before and after, so the counters of
-- `guard metrics` never drop when retention deletes rows. guard.apply_retention runs it before it
-- deletes anything. The hour keeps rows of transactions still open at the horizon (their time is
-- their transaction's start) from being passed over; a transaction open longer than that would be
-- missed by the counters, never counted twice. Each range is read on an index by its time.
-- The booking attempts the booking path settled (calendar_calls counted) also go into the
-- booking duration histogram and the retries counter, and the circuits' recoveries (half_open ->
-- closed, by when recorded) into the recovery histogram, bucketed by guard.histogram_bucket.
-- Returns the sum of the counts it added to all counters and buckets (a failed validation adds
-- to two, a booking attempt the booking path settled to up to three); sums of seconds are not
-- counted in it.
CREATE OR REPLACE FUNCTION guard.fold_metric_totals()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    horizon timestamptz := now() - interval '1 hour';
    previous timestamptz;
    folded bigint;
BEGIN
    -- the row lock keeps two folds (two retention runs) from counting one range twice
    SELECT w.folded_before INTO previous FROM guard.metric_watermark AS w FOR UPDATE;
    IF NOT FOUND THEN
        previous := '-infinity';
        INSERT INTO guard.metric_watermark (folded_before) VALUES (previous)
        ON CONFLICT (id) DO NOTHING;
        SELECT w.folded_before INTO previous FROM guard.metric_watermark AS w FOR UPDATE;
    END IF;
    IF horizon <= previous THEN
        RETURN 0;
    END IF;

    -- the attempts the booking path settled (it counted its calendar calls), each state on its
    -- index by when it settled; and the circuits' recoveries, each with the opening it ended
    WITH settled AS (
        SELECT
            b.state,
            b.calendar_calls,
            extract(EPOCH FROM b.finished_at - b.created_at)::double precision AS seconds
        FROM guard.booking_attempts AS b
        WHERE
            b.state = 'failed'
            AND b.finished_at >= previous
            AND b.finished_at < horizon
            AND b.calendar_calls IS NOT NULL
        UNION ALL
        SELECT
            b.state,
            b.calendar_calls,
            extract(EPOCH FROM b.finished_at - b.created_at)::double precision
        FROM guard.booking_attempts AS b
        WHERE
            b.state = 'queued'
            AND b.finished_at >= previous
            AND b.finished_at < horizon
            AND b.calendar_calls IS NOT NULL
        UNION ALL
        SELECT
            b.state,
            b.calendar_calls,
            extract(EPOCH FROM b.finished_at - b.created_at)::double precision
        FROM guard.booking_attempts AS b
        WHERE
            b.state = 'booked'
            AND b.finished_at >= previous
            AND b.finished_at < horizon
            AND b.calendar_calls IS NOT NULL
    ),

    recoveries AS (
        SELECT
            e.key,
            greatest(0, extract(EPOCH FROM e.occurred_at - opened.occurred_at))::double precision
                AS seconds
        FROM guard.breaker_events AS e
        CROSS JOIN LATERAL (
            SELECT o.occurred_at
            FROM guard.breaker_events AS o
            WHERE
                o.key = e.key
                AND o.generation < e.generation
                AND o.from_state = 'closed'
                AND o.to_state = 'open'
            ORDER BY o.generation DESC
            LIMIT 1
        ) AS opened
        WHERE
            e.from_state = 'half_open'
            AND e.to_state = 'closed'
            AND e.recorded_at >= previous
            AND e.recorded_at < horizon
    ),

    counts AS (
        SELECT 'bookings' AS counter, b.state AS label, count(*) AS n
        FROM guard.booking_attempts AS b
        WHERE
            b.state = 'failed'
            AND b.finished_at >= previous
            AND b.finished_at < horizon
        GROUP BY b.state
        UNION ALL
        SELECT 'bookings', b.state, count(*)
        FROM guard.booking_attempts AS b
        WHERE
            b.state = 'queued'
            AND b.finished_at >= previous
            AND b.finished_at < horizon
        GROUP BY b.state
        UNION ALL
        SELECT 'bookings', b.state, count(*)
        FROM guard.booking_attempts AS b
        WHERE
            b.state IN ('booked', 'recovered')
            AND b.finished_at >= previous
            AND b.finished_at < horizon
        GROUP BY b.state
        UNION ALL
        SELECT 'validations', CASE WHEN m.ok THEN 'passed' ELSE 'failed' END, count(*)
        FROM guard.validation_metrics AS m
        WHERE m.measured_at >= previous AND m.measured_at < horizon
        GROUP BY m.ok
        UNION ALL
        SELECT 'validation_failures', coalesce(m.failure_reason, 'unknown'), count(*)
        FROM guard.validation_metrics AS m
        WHERE NOT m.ok AND m.measured_at >= previous AND m.measured_at < horizon
        GROUP BY 2
        UNION ALL
        SELECT 'alerts_opened', a.check_id, count(*)
        FROM guard.alerts AS a
        WHERE a.first_seen_at >= previous AND a.first_seen_at < horizon
        GROUP BY a.check_id
        UNION ALL
        SELECT 'booking_retries', guard.booking_retry_outcome(s.state, s.calendar_calls), count(*)
        FROM settled AS s
        WHERE guard.booking_retry_outcome(s.state, s.calendar_calls) IS NOT NULL
        GROUP BY 2
        UNION ALL
        SELECT
            'booking_duration',
            s.state || '|' || guard.histogram_bucket('booking_duration', s.seconds),
            count(*)
        FROM settled AS s
        GROUP BY 2
        UNION ALL
        SELECT 'booking_duration', s.state || '|sum_us', sum(round(s.seconds * 1e6))::bigint
        FROM settled AS s
        GROUP BY s.state
        UNION ALL
        SELECT
            'breaker_recovery',
            r.key || '|' || guard.histogram_bucket('breaker_recovery', r.seconds),
            count(*)
        FROM recoveries AS r
        GROUP BY 2
        UNION ALL
        SELECT 'breaker_recovery', r.key || '|sum_us', sum(round(r.seconds * 1e6))::bigint
        FROM recoveries AS r
        GROUP BY r.key
    ),

    added AS (
        INSERT INTO guard.metric_totals AS t (counter, label, total)
        SELECT c.counter, c.label, c.n FROM counts AS c
        ON CONFLICT (counter, label) DO UPDATE SET total = t.total + excluded.total
        RETURNING t.counter
    )

    -- (a data-modifying CTE runs whether or not it is read)
    SELECT coalesce(sum(c.n), 0) INTO folded FROM counts AS c WHERE c.label NOT LIKE '%|sum\_us';
    UPDATE guard.metric_watermark SET folded_before = horizon, folded_at = now();
    RETURN folded;
END;
$$;
