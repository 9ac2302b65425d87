-- transactional: false
-- 0114_customer_company_key: the unique key (id, company_id) on customers that the tenant-safe
-- foreign keys of 0115_customer_company_links refer to. Built CONCURRENTLY (the application's
-- writes go on); a re-run after an interrupted build drops an INVALID leftover first.
-- Locks: SHARE UPDATE EXCLUSIVE on public.customers while it builds (reads and writes go on).

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('public.guard_customers_id_company_key')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX public.guard_customers_id_company_key;
    END IF;
END
$$;

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS guard_customers_id_company_key
ON public.customers (id, company_id);
