-- transactional: false
-- Rollback of 0114_customer_company_key.

DROP INDEX CONCURRENTLY IF EXISTS public.guard_customers_id_company_key;
