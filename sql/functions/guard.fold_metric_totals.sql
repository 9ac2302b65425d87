-- Add the rows written before a horizon (an hour ago) and not yet counted to guard.metric_totals
-- and move guard.metric_watermark to that horizon, in one transaction: a scrape (totals plus the
-- rows from the watermark on) sees the same sums before and after, so the counters of
-- `guard metrics` never drop when retention deletes rows. guard.apply_retention runs it before it
-- deletes anything. The hour keeps rows of transactions still open at the horizon (their time is
-- their transaction's start) from being passed over; a transaction open longer than that would be
-- missed by the counters, never counted twice. Each range is read on an index by its time.
-- Returns the sum of what it added to all counters (a failed validation adds to two).
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

    WITH counts AS (
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
    ),

    added AS (
        INSERT INTO guard.metric_totals AS t (counter, label, total)
        SELECT c.counter, c.label, c.n FROM counts AS c
        ON CONFLICT (counter, label) DO UPDATE SET total = t.total + excluded.total
        RETURNING t.counter
    )

    -- (a data-modifying CTE runs whether or not it is read)
    SELECT coalesce(sum(c.n), 0) INTO folded FROM counts AS c;
    UPDATE guard.metric_watermark SET folded_before = horizon, folded_at = now();
    RETURN folded;
END;
$$;
