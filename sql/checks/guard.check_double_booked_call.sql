-- I10, check double_booked_call of rule I10_double_booking: a call with more than one active
-- appointment. Each appointment after the call's first active one (by id, known on every row,
-- where an adopted row may lack its creation time) is a row, so a call booked three times raises
-- two alerts, each naming the appointment it repeats. Two writers booking one call without a
-- lock do this; the flags of the call still say booked, so no other check sees it.
CREATE OR REPLACE VIEW guard.check_double_booked_call WITH (security_invoker = TRUE) AS
SELECT
    'double_booked_call'::text AS check_id,
    a.company_id,
    'appointment'::text AS entity_type,
    a.id AS entity_id,
    a.call_id,
    'high'::text AS severity,
    guard.app_time(a.created_at, (SELECT guard.app_time_zone())) AS observed_at,
    jsonb_build_object(
        'call_id', a.call_id,
        'first_appointment_id', (
            SELECT b.id
            FROM public.appointments AS b
            WHERE b.call_id = a.call_id AND guard.is_active_appointment(b.status, b.deleted_at)
            ORDER BY b.id
            LIMIT 1
        ),
        'booking_uid', a.calcom_v2_booking_id
    ) AS detail,
    'I10_double_booking'::text AS rule_id
FROM public.appointments AS a
WHERE
    a.call_id IS NOT NULL
    AND guard.is_active_appointment(a.status, a.deleted_at)
    AND EXISTS (
        SELECT
        FROM public.appointments AS b
        WHERE
            b.call_id = a.call_id
            AND guard.is_active_appointment(b.status, b.deleted_at)
            AND b.id < a.id
    );
