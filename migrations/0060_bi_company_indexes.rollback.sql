-- transactional: false
-- Rollback of 0060_bi_company_indexes.

DROP INDEX CONCURRENTLY IF EXISTS public.guard_appointments_company_created_idx;

DROP INDEX CONCURRENTLY IF EXISTS public.guard_calls_company_created_idx;
