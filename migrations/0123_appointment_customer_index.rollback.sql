-- transactional: false
-- Rollback of 0123_appointment_customer_index: 0112's index again, built before the other is
-- dropped; a re-run after an interrupted build drops an INVALID leftover first.

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

DROP INDEX CONCURRENTLY IF EXISTS public.guard_appointments_customer_idx;
