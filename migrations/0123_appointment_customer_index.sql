-- transactional: false
-- 0123_appointment_customer_index: the index of check customer_double_booked on customer_id
-- alone. With starts_at in it (0112), no move of an appointment could be updated in place (HOT):
-- every move added an entry to each index of public.appointments. The check reads a customer's
-- appointments by customer_id and tests the times row by row either way (its overlap condition is
-- an OR, no index range). Built CONCURRENTLY before the old one is dropped CONCURRENTLY (the
-- application's writes go on); a re-run after an interrupted build drops an INVALID leftover
-- first.
-- Locks: SHARE UPDATE EXCLUSIVE on public.appointments while the new index builds and the old one
-- is dropped (reads and writes go on).

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('public.guard_appointments_customer_idx')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX public.guard_appointments_customer_idx;
    END IF;
END
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS guard_appointments_customer_idx
ON public.appointments (customer_id) WHERE customer_id IS NOT NULL;

DROP INDEX CONCURRENTLY IF EXISTS public.guard_appointments_customer_starts_idx;
