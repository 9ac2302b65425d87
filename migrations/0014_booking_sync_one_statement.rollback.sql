-- I3, AFTER INSERT ... FOR EACH STATEMENT on appointments: calls that received an active
-- appointment are booked. The answer does not depend on anything else, so it is one set-based
-- UPDATE of those calls (the statement an application would write by hand), unconditional on
-- purpose: its row lock, and READ COMMITTED's re-check of the latest row version, serialise it
-- with a concurrent writer that is unbooking the same call (tests/db/test_concurrency.py).
-- Skipping calls that already look booked would decide from a possibly stale snapshot.
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_insert()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    booked_calls bigint[];
BEGIN
    SELECT array_agg(DISTINCT n.call_id) INTO booked_calls
    FROM new_rows AS n
    WHERE n.call_id IS NOT NULL AND n.deleted_at IS NULL AND n.status IS DISTINCT FROM 'cancelled';
    IF booked_calls IS NOT NULL THEN
        UPDATE public.calls AS c
        SET
            appointment_made = TRUE,
            appointment_link_status = 'linked',
            appointment_linked_at = coalesce(c.appointment_linked_at, now()),
            session_outcome = 'appointment_booked',
            booking_failed = FALSE,
            updated_at = now()
        WHERE c.id = ANY (booked_calls);
    END IF;
    RETURN NULL;
END;
$$;
