-- transactional: false
-- Rollback of 0112_appointment_customer_index.

DROP INDEX CONCURRENTLY IF EXISTS public.guard_appointments_customer_starts_idx;
