-- I7, the booking journal and the booking path.
-- The audit trail of the appointments the calendar's reconciliation recorded (`guard calendar
-- reconcile`: what only the calendar had, and after a failover the attempts the old primary
-- journaled and never recorded): one guard.correction_audit row per appointment, under
-- I7_booking_failures, entity appointment, before NULL (the database had no such appointment),
-- after its call, booking uid and times. replayed_until: the last transaction the promoted server
-- replayed, for a run after a failover (its reason then says so, with that time); NULL otherwise.
-- Without it, a booking restored after a failover left no trace a person could see
-- apart from the appointment itself. Written by the command once its bookings are reconciled (each
-- booking commits in a transaction of its own first). Only active appointments that carry a
-- calendar uid, of companies the session may act on (guard.assert_tenant), are audited, each once
-- (an id given again, or twice, writes nothing); others are left out; a NULL array is refused.
-- Returns the rows written.
-- SECURITY DEFINER: the application may not write the audit itself.
CREATE OR REPLACE FUNCTION guard.audit_calendar_restorations(
    appointment_ids bigint[],
    replayed_until timestamptz
)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    prefix CONSTANT text := 'calendar reconciliation: recorded from the calendar';
    written integer;
BEGIN
    IF audit_calendar_restorations.appointment_ids IS NULL THEN
        RAISE EXCEPTION 'audit_calendar_restorations needs the ids of the appointments recorded'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM guard.assert_tenant(a.company_id)
    FROM public.appointments AS a
    WHERE a.id = ANY (audit_calendar_restorations.appointment_ids);
    INSERT INTO guard.correction_audit (
        rule_id, company_id, entity_type, entity_id, before, after, reason, actor
    )
    SELECT
        'I7_booking_failures',
        a.company_id,
        'appointment',
        a.id,
        NULL,
        jsonb_build_object(
            'call_id', a.call_id, 'booking_uid', a.calcom_v2_booking_id,
            'starts_at', a.starts_at, 'ends_at', a.ends_at
        ),
        prefix
        || CASE
            WHEN audit_calendar_restorations.replayed_until IS NOT NULL
                THEN ' after a failover (the promoted server replayed up to '
                || to_char(
                    audit_calendar_restorations.replayed_until AT TIME ZONE 'UTC',
                    'YYYY-MM-DD HH24:MI:SS'
                )
                || ' UTC)'
            ELSE ''
        END
        || ' (booking ' || a.calcom_v2_booking_id || ')',
        session_user
    FROM public.appointments AS a
    WHERE
        a.id = ANY (audit_calendar_restorations.appointment_ids)
        AND a.calcom_v2_booking_id IS NOT NULL
        AND guard.is_active_appointment(a.status, a.deleted_at)
        AND NOT EXISTS (
            SELECT
            FROM guard.correction_audit AS c
            WHERE
                c.entity_type = 'appointment'
                AND c.entity_id = a.id
                AND c.reason LIKE prefix || '%'
        );
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END;
$$;
