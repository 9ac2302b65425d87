DROP INDEX CONCURRENTLY IF EXISTS public.guard_calls_id_company_key;
