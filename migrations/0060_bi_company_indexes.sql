-- transactional: false
-- 0060_bi_company_indexes: a company's whole history without reading the table. Under
-- row-level security every query of a reporting login is `company_id = ANY (its companies)`,
-- and no index led with company_id: a per-company report over months of calls or appointments
-- read the whole table. Built CONCURRENTLY (the application writes on); a re-run after an
-- interrupted build drops an INVALID leftover first. company_id and created_at never change
-- on a write of the flags, so those updates stay HOT.
-- Locks: SHARE UPDATE EXCLUSIVE on public.calls and public.appointments while each builds
-- (reads and writes go on).

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('public.guard_calls_company_created_idx')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX public.guard_calls_company_created_idx;
    END IF;
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('public.guard_appointments_company_created_idx')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX public.guard_appointments_company_created_idx;
    END IF;
END;
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS guard_calls_company_created_idx
ON public.calls (company_id, created_at);

CREATE INDEX CONCURRENTLY IF NOT EXISTS guard_appointments_company_created_idx
ON public.appointments (company_id, created_at);
