-- The bucket of a cumulative histogram of `guard metrics` that a duration falls in: the upper
-- bound (as text: '0.5', '10') of the smallest bucket holding it (Prometheus' `le`: a duration
-- equal to a bound is in that bucket), or '+Inf' (also for a NULL duration, which a settled
-- attempt never has: a bucket label is never NULL, so a fold can always store it). The bounds live here only: the scrape
-- (guard/ops/metrics.py reads them back with guard.histogram_bounds) and guard.fold_metric_totals
-- both bucket with it, so the folded totals and the fresh rows always agree. Documented in
-- docs/metrics.md.
--   booking_duration  seconds from journaling an attempt to settling it: the calendar's answer
--                     with every retry and backoff (the calendar call timeout is 10 s)
--   breaker_recovery  seconds from a circuit opening to its closing after successful probes
--                     (the cooldown is 30 s, longer when it grows)
-- LANGUAGE sql, IMMUTABLE, no SET clause: the planner inlines it.
CREATE OR REPLACE FUNCTION guard.histogram_bucket(histogram text, seconds double precision)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN coalesce(
    (
        SELECT b.bound::text
        FROM unnest(guard.histogram_bounds(histogram)) AS b (bound)
        WHERE seconds <= b.bound
        ORDER BY b.bound
        LIMIT 1
    ),
    '+Inf'
);
