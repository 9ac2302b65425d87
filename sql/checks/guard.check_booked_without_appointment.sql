-- I4, check booked_without_appointment of rule I4_booked_outcome: a phantom booking. The call
-- claims a booking (made, or outcome appointment_booked) but no active appointment exists, and the
-- claim is older than the grace period. The claim's age is taken from the call's last write
-- (updated_at), because a call may book minutes after it started. The application's times are
-- read in its own zone (guard.app_time), never in the session's.
CREATE OR REPLACE VIEW guard.check_booked_without_appointment WITH (security_invoker = TRUE) AS
SELECT
    'booked_without_appointment'::text AS check_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'critical'::text AS severity,
    guard.app_time(c.created_at, (SELECT guard.app_time_zone())) AS observed_at,
    jsonb_build_object(
        'appointment_made', c.appointment_made,
        'session_outcome', c.session_outcome,
        'booking_id', c.booking_id,
        'claimed_seconds_ago', floor(extract(EPOCH FROM now() - guard.app_time(
            greatest(c.created_at, c.updated_at), (SELECT guard.app_time_zone())
        )))
    ) AS detail,
    'I4_booked_outcome'::text AS rule_id
FROM public.calls AS c
WHERE
    (c.appointment_made OR c.session_outcome = 'appointment_booked')
    -- both times unknown (an adopted row): long past any grace period, not inside it
    AND coalesce(
        guard.app_time(greatest(c.created_at, c.updated_at), (SELECT guard.app_time_zone()))
        < now() - make_interval(
            secs => (
                SELECT (s.value #>> '{}')::integer FROM guard.settings AS s
                WHERE s.key = 'grace_period_seconds'
            )
        ), TRUE
    )
    AND NOT EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE a.call_id = c.id AND a.company_id = c.company_id AND guard.is_active_appointment(a.status, a.deleted_at)
    );
