-- transactional: false
-- 0112_appointment_customer_index: check customer_double_booked (rule I10_double_booking) looks a
-- new appointment's customer up among the active appointments at overlapping times. Built
-- CONCURRENTLY (the application's writes go on); a re-run after an interrupted build drops an
-- INVALID leftover first.
-- Locks: SHARE UPDATE EXCLUSIVE on public.appointments while it builds (reads and writes go on).

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('public.guard_appointments_customer_starts_idx')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX public.guard_appointments_customer_starts_idx;
    END IF;
END
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS guard_appointments_customer_starts_idx
ON public.appointments (customer_id, starts_at) WHERE customer_id IS NOT NULL;
