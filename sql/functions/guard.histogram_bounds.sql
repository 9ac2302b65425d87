-- The upper bounds (seconds) of the buckets of each cumulative histogram of `guard metrics`
-- (guard.histogram_bucket says what each measures); NULL for an unknown histogram. Changing a
-- bound changes the histogram's history: the folded totals keep their old buckets.
CREATE OR REPLACE FUNCTION guard.histogram_bounds(histogram text)
RETURNS double precision[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN CASE histogram_bounds.histogram
    WHEN 'booking_duration'
        THEN '{0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60}'::double precision[]
    WHEN 'breaker_recovery'
        THEN '{15, 30, 60, 120, 300, 600, 1800, 3600, 10800, 21600}'::double precision[]
END;
