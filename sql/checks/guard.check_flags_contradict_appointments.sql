-- I3, check flags_contradict_appointments of rule I3_appointment_flags: a call with an active
-- appointment whose flags do not say so (not made, not linked, no link time, another outcome, or
-- marked failed): the rule of guard.call_flags_contradict, which the commit-time check and the
-- derivation apply, so that what they would correct is what detection and reconcile find.
CREATE OR REPLACE VIEW guard.check_flags_contradict_appointments WITH (security_invoker = TRUE) AS
SELECT
    'flags_contradict_appointments'::text AS check_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'high'::text AS severity,
    guard.app_time(c.created_at, (SELECT guard.app_time_zone())) AS observed_at,
    jsonb_build_object(
        'appointment_made', c.appointment_made,
        'appointment_link_status', c.appointment_link_status,
        'session_outcome', c.session_outcome,
        'booking_failed', c.booking_failed
    ) AS detail,
    'I3_appointment_flags'::text AS rule_id
FROM public.calls AS c
WHERE
    EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE a.call_id = c.id AND a.company_id = c.company_id AND guard.is_active_appointment(a.status, a.deleted_at)
    )
    AND NOT coalesce(
        c.appointment_made
        AND c.appointment_link_status = 'linked'
        AND c.appointment_linked_at IS NOT NULL
        AND c.session_outcome = 'appointment_booked'
        AND NOT c.booking_failed,
        FALSE
    );
