-- transactional: false

DROP INDEX CONCURRENTLY IF EXISTS public.guard_appointments_booking_uid_idx;

DROP INDEX CONCURRENTLY IF EXISTS public.guard_calls_booking_id_idx;

DROP INDEX CONCURRENTLY IF EXISTS public.guard_calls_created_at_idx;

DROP INDEX CONCURRENTLY IF EXISTS public.guard_appointments_call_id_idx;
