-- I3: lock the calls of `lost` and `others` in id order, then derive the flags of those that just
-- lost an active appointment (`lost`) and of the others again (guard.call_flags_to_correct; a
-- call is in one of the two). The tail of the appointment triggers: lock first, read the
-- appointments in the next statement, so that under READ COMMITTED a concurrent writer we waited
-- for is seen (tests/db/test_concurrency.py); id order keeps two such writers from deadlocking.
-- A correction that leaves a booking claim without an appointment standing (a phantom: outcome
-- booked, made = false) keeps the call's updated_at, as refresh_call_flags does.
-- SECURITY INVOKER, the writer's rights (the application may update calls itself).
CREATE OR REPLACE FUNCTION guard.sync_call_flags(lost bigint[], others bigint[])
RETURNS void
LANGUAGE plpgsql
-- The lock and the UPDATEs take the call ids as a parameter: custom plans would be planned again
-- on every call, and PostgreSQL kept choosing them (bench/instructions.py).
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    PERFORM FROM public.calls AS c WHERE c.id = ANY (lost || others) ORDER BY c.id FOR NO KEY UPDATE;
    IF pg_catalog.cardinality(lost) > 0 THEN
        UPDATE public.calls AS c
        SET
            appointment_made = f.new_made,
            appointment_link_status = f.new_link_status,
            appointment_linked_at = f.new_linked_at,
            session_outcome = f.new_outcome,
            booking_failed = f.new_failed,
            booking_confirmed = f.new_confirmed,
            updated_at = CASE
                WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
                ELSE guard.to_app_time(pg_catalog.now(), c.updated_at, guard.app_time_zone())
            END
        FROM guard.call_flags_to_correct(lost, TRUE) AS f
        WHERE c.ctid = f.row_id;
    END IF;
    IF pg_catalog.cardinality(others) > 0 THEN
        UPDATE public.calls AS c
        SET
            appointment_made = f.new_made,
            appointment_link_status = f.new_link_status,
            appointment_linked_at = f.new_linked_at,
            session_outcome = f.new_outcome,
            booking_failed = f.new_failed,
            booking_confirmed = f.new_confirmed,
            updated_at = CASE
                WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
                ELSE guard.to_app_time(pg_catalog.now(), c.updated_at, guard.app_time_zone())
            END
        FROM guard.call_flags_to_correct(others, FALSE) AS f
        WHERE c.ctid = f.row_id;
    END IF;
END;
$$;
