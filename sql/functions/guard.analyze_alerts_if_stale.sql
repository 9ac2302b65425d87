-- ANALYZE guard.alerts when the planner's idea of how many alerts are open is far below the truth
-- (open_alerts, counted by the caller); says whether it did. A detection pass (guard.run_detection,
-- guard.detect_between) joins its findings with the open alerts through the partial indexes on
-- status = 'open', whose size the planner takes from their last VACUUM or ANALYZE: right after a
-- pass or a burst opened thousands of alerts, autoanalyze has not run yet (its threshold is a
-- share of the whole table, resolved history included), an index believed empty looked cheaper
-- to read whole than to probe, and each finding was compared with every open alert: a pass over
-- 70,000 open alerts at 1M calls ran for 705 s. ANALYZE samples the table (about 30,000 rows)
-- and takes a SHARE UPDATE EXCLUSIVE lock, which writers do not wait for.
CREATE OR REPLACE FUNCTION guard.analyze_alerts_if_stale(open_alerts bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    believed real;
BEGIN
    SELECT greatest(c.reltuples, 0) INTO believed
    FROM pg_catalog.pg_class AS c
    WHERE c.oid = 'guard.alerts_one_open_per_fingerprint'::regclass;
    IF open_alerts IS NULL OR open_alerts <= 2 * believed + 1000 THEN
        RETURN FALSE;
    END IF;
    ANALYZE guard.alerts;
    RETURN TRUE;
END;
$$;
