-- transactional: false
-- I5 (an appointment and its call belong to the same company) is a composite foreign key
-- appointments (call_id, company_id) -> calls (id, company_id), which needs a unique key on
-- calls (id, company_id). Built CONCURRENTLY so that a large adopted calls table keeps taking
-- writes; re-runnable after an interruption (an INVALID leftover is dropped first).

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE i.indexrelid = to_regclass('public.guard_calls_id_company_key') AND NOT i.indisvalid
    ) THEN
        DROP INDEX public.guard_calls_id_company_key;
    END IF;
END;
$$;

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS guard_calls_id_company_key
ON public.calls (id, company_id);
