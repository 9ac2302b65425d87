-- Detection thresholds (rule detection_thresholds): judge one check of a windowed pass by its
-- measure (offending rows, or their rate per 100 calls of the window, as guard.run_detection
-- computed it for the check's threshold_unit) against the check's warn_above and error_above,
-- and keep its alert of check check_threshold in step: open (or bumped, its severity following
-- the outcome: medium for warn, high for fail) while the outcome is warn or fail, resolved as
-- fixed by the first pass that passes. Returns pass, warn or fail; NULL for a check without
-- thresholds. "Above" is strict: a measure equal to a threshold passes it.
-- One alert per judged check, about no company (entity_type check): a threshold is the DBA's
-- judgement of a whole pass. The per-row alerts of the check are not touched.
CREATE OR REPLACE FUNCTION guard.judge_check_threshold(judged_check text, measure numeric)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    judged record;
    outcome text;
BEGIN
    SELECT k.id, k.warn_above, k.error_above, k.threshold_unit INTO judged
    FROM guard.checks AS k
    WHERE k.id = judged_check AND (k.warn_above IS NOT NULL OR k.error_above IS NOT NULL);
    IF NOT FOUND OR measure IS NULL THEN
        RETURN NULL;
    END IF;
    outcome := CASE
        WHEN measure > judged.error_above THEN 'fail'
        WHEN measure > judged.warn_above THEN 'warn'
        ELSE 'pass'
    END;
    IF outcome = 'pass' THEN
        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
        WHERE a.status = 'open' AND a.fingerprint = 'check_threshold:check:' || judged.id;
        RETURN outcome;
    END IF;
    INSERT INTO guard.alerts AS a (
        fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details
    )
    SELECT
        'check_threshold:check:' || judged.id,
        k.id,
        NULL,
        'check',
        NULL,
        CASE outcome WHEN 'fail' THEN 'high' ELSE 'medium' END,
        format(
            'check %s is above its %s threshold: %s %s (warn above %s, error above %s)',
            judged.id,
            CASE outcome WHEN 'fail' THEN 'error' ELSE 'warn' END,
            measure,
            CASE judged.threshold_unit WHEN 'rate_pct' THEN 'per 100 calls' ELSE 'rows' END,
            coalesce(judged.warn_above::text, '-'),
            coalesce(judged.error_above::text, '-')
        ),
        jsonb_build_object(
            'judged_check', judged.id,
            'outcome', outcome,
            'measure', measure,
            'unit', judged.threshold_unit,
            'warn_above', judged.warn_above,
            'error_above', judged.error_above
        )
    FROM guard.checks AS k
    WHERE k.id = 'check_threshold' AND k.enabled
    ON CONFLICT (fingerprint) WHERE status = 'open'
    DO UPDATE SET
        occurrences = a.occurrences + 1,
        last_seen_at = now(),
        severity = excluded.severity,
        message = excluded.message,
        details = excluded.details;
    RETURN outcome;
END;
$$;
