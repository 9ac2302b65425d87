-- Rule recent_booking_failure (I7): a booking that failed within the failure window
-- (failure_window_minutes). Failures are not wrong data; they must not go unnoticed.
CREATE VIEW guard.check_recent_booking_failure WITH (security_invoker = TRUE) AS
SELECT
    'recent_booking_failure'::text AS rule_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'high'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object(
        'session_outcome', c.session_outcome,
        'booking_failure_reason', c.booking_failure_reason,
        'requires_manual_processing', c.requires_manual_processing
    ) AS detail
FROM public.calls AS c
WHERE
    (c.session_outcome = 'creation_failed' OR c.booking_failed)
    AND c.created_at >= now() - make_interval(
        mins => (
            SELECT (s.value #>> '{}')::integer FROM guard.settings AS s
            WHERE s.key = 'failure_window_minutes'
        )
    );
