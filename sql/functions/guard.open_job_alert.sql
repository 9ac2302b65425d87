-- Raise an operational alert about one job (rule job_failed or job_missed). One open alert per
-- rule and job: a repeat bumps occurrences and last_seen_at instead of adding a row.
CREATE FUNCTION guard.open_job_alert(
    alert_rule text, alert_job text, alert_message text, alert_details jsonb
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    INSERT INTO guard.alerts AS a (
        fingerprint, rule_id, company_id, entity_type, entity_id, severity, message, details
    )
    SELECT
        format('%s:job:%s', r.id, alert_job),
        r.id,
        NULL,
        'job',
        NULL,
        r.severity,
        alert_message,
        alert_details || jsonb_build_object('job', alert_job)
    FROM guard.rules AS r
    WHERE r.id = alert_rule AND r.enabled
    ON CONFLICT (fingerprint) WHERE status = 'open'
    DO UPDATE SET occurrences = a.occurrences + 1, last_seen_at = now();
END;
$$;
