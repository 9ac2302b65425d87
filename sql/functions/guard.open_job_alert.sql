-- Raise an operational alert about one job (check job_failed or job_missed of rule job_health).
-- One open alert per check and job: a repeat bumps occurrences and last_seen_at instead of adding
-- a row.
CREATE OR REPLACE FUNCTION guard.open_job_alert(
    alert_check text, alert_job text, alert_message text, alert_details jsonb
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    INSERT INTO guard.alerts AS a (
        fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details
    )
    SELECT
        format('%s:job:%s', k.id, alert_job),
        k.id,
        NULL,
        'job',
        NULL,
        k.severity,
        alert_message,
        alert_details || jsonb_build_object('job', alert_job)
    FROM guard.checks AS k
    WHERE k.id = alert_check AND k.enabled
    ON CONFLICT (fingerprint) WHERE status = 'open'
    DO UPDATE SET occurrences = a.occurrences + 1, last_seen_at = now();
END;
$$;
