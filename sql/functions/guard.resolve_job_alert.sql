-- Resolve the open operational alert of one check about one job (its problem has gone).
CREATE OR REPLACE FUNCTION guard.resolve_job_alert(alert_check text, alert_job text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    resolved_count integer;
BEGIN
    UPDATE guard.alerts AS a
    SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
    WHERE a.fingerprint = format('%s:job:%s', alert_check, alert_job) AND a.status = 'open';
    GET DIAGNOSTICS resolved_count = ROW_COUNT;
    RETURN resolved_count;
END;
$$;
