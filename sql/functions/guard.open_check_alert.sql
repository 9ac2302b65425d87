-- Raise an operational alert about one detection check (check_failed or check_over_budget of
-- rule detection_health), with no company: one open alert per kind and check, a repeat bumps
-- occurrences and last_seen_at and carries the newest message and details. quiet: a repeat
-- within this long of the open alert's last_seen_at writes nothing, so that the application's
-- sessions meeting the same failing check in check_call do not all update one row (and wait for
-- each other on it); NULL: every repeat bumps (a detection pass, one at a time).
CREATE OR REPLACE FUNCTION guard.open_check_alert(
    alert_check text,
    about_check text,
    alert_message text,
    alert_details jsonb,
    quiet interval DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF quiet IS NOT NULL AND EXISTS (
        SELECT FROM guard.alerts AS a
        WHERE
            a.status = 'open'
            AND a.fingerprint = alert_check || ':check:' || about_check
            AND a.last_seen_at > now() - quiet
    ) THEN
        RETURN;
    END IF;
    INSERT INTO guard.alerts AS a (
        fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details
    )
    SELECT
        k.id || ':check:' || about_check,
        k.id,
        NULL,
        'check',
        NULL,
        k.severity,
        alert_message,
        alert_details || jsonb_build_object('check', about_check)
    FROM guard.checks AS k
    WHERE k.id = alert_check AND k.enabled
    ON CONFLICT (fingerprint) WHERE status = 'open'
    DO UPDATE SET
        occurrences = a.occurrences + 1,
        last_seen_at = now(),
        message = excluded.message,
        details = excluded.details;
END;
$$;
