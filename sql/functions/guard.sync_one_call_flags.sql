-- I3: derive one call's booking flags again, the call whose appointment a one-row cancel, soft
-- delete, restore or delete just changed (lost: it was active there and is no longer). The
-- everyday end of the appointment triggers (guard.sync_flags_after_appointment_update and
-- guard.sync_flags_after_appointment_delete); guard.sync_call_flags does the same for any number
-- of calls.
-- Lock the call and read its company, then ask whether an active appointment remains in the next
-- statement (READ COMMITTED: it sees what a writer we waited for committed), then one UPDATE
-- whose WHERE skips a call that is already right. This is the rule of
-- guard.call_flags_to_correct written over one call in the two cases of has_active: starting
-- up the derivation's generic plan (its join, its subquery and its expressions) was about 150k
-- instructions of a one-row cancel, and these three small statements cost 70k less in all
-- (bench/instructions.py). tests/db/test_flag_rule.py proves the two agree on every
-- combination of a call's flags, its appointments and the change.
-- No SET clause, every function name qualified: see "Trigger functions without SET clauses" in
-- docs/security.md. SECURITY INVOKER, the writer's rights, like the triggers that call it: under
-- row-level security a call the writer may not see is not found, and nothing is written.
-- Returns whether it wrote the call, so that a caller can call it in an expression (a PERFORM is
-- a query, with an executor to start). STRICT: a NULL argument names no call and no change;
-- nothing runs (NULL).
CREATE OR REPLACE FUNCTION guard.sync_one_call_flags(call_id bigint, lost boolean)
RETURNS boolean
LANGUAGE plpgsql
STRICT
AS $$
DECLARE
    company bigint;
BEGIN
    SELECT c.company_id INTO company
    FROM public.calls AS c
    WHERE c.id = sync_one_call_flags.call_id
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    -- PERFORM ... LIMIT 1 and FOUND, not IF EXISTS: no Result node and sub-plan to start
    PERFORM
    FROM public.appointments AS a
    WHERE
        a.call_id = sync_one_call_flags.call_id
        AND a.company_id = company
        AND guard.is_active_appointment(a.status, a.deleted_at)
    LIMIT 1;
    IF FOUND THEN
        UPDATE public.calls AS c
        SET
            appointment_made = TRUE,
            appointment_link_status = 'linked',
            appointment_linked_at = coalesce(
                c.appointment_linked_at,
                guard.to_app_time(pg_catalog.now(), c.appointment_linked_at, guard.app_time_zone())
            ),
            session_outcome = 'appointment_booked',
            booking_failed = FALSE,
            updated_at = guard.to_app_time(pg_catalog.now(), c.updated_at, guard.app_time_zone())
        WHERE
            c.id = sync_one_call_flags.call_id
            AND (
                c.appointment_made IS NOT TRUE
                OR c.appointment_link_status IS DISTINCT FROM 'linked'
                OR c.appointment_linked_at IS NULL
                OR c.session_outcome IS DISTINCT FROM 'appointment_booked'
                OR c.booking_failed IS NOT FALSE
            );
        RETURN FOUND;
    END IF;
    -- None left: made false; a link becomes `unlinked` (never linked and `creation_failed` stay);
    -- when this change lost it, a booked outcome becomes cancelled and the booking is no longer
    -- confirmed. A booked outcome that stands without an appointment keeps updated_at.
    UPDATE public.calls AS c
    SET
        appointment_made = FALSE,
        appointment_link_status = CASE
            WHEN c.appointment_link_status IS NULL OR c.appointment_link_status = 'creation_failed'
                THEN c.appointment_link_status
            ELSE 'unlinked'
        END,
        session_outcome = CASE
            WHEN lost AND c.session_outcome = 'appointment_booked' THEN 'appointment_cancelled'
            ELSE c.session_outcome
        END,
        booking_confirmed = c.booking_confirmed AND NOT lost,
        updated_at = CASE
            WHEN NOT lost AND c.session_outcome = 'appointment_booked' THEN c.updated_at
            ELSE pg_catalog.now()
        END
    WHERE
        c.id = sync_one_call_flags.call_id
        AND (
            c.appointment_made IS NOT FALSE
            OR c.appointment_link_status NOT IN ('unlinked', 'creation_failed')
            OR lost AND (c.session_outcome = 'appointment_booked' OR c.booking_confirmed IS NOT FALSE)
        );
    RETURN FOUND;
END;
$$;
