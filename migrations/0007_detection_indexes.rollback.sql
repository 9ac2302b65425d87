DROP INDEX CONCURRENTLY IF EXISTS public.guard_appointments_created_at_idx;
