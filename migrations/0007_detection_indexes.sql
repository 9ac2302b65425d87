-- transactional: false
-- Detection looks at recent appointments (orphans, cross-tenant links) by created_at. Built
-- CONCURRENTLY (adopted tables keep taking writes) and re-runnable after an interruption.

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE
            i.indexrelid = to_regclass('public.guard_appointments_created_at_idx')
            AND NOT i.indisvalid
    ) THEN
        DROP INDEX public.guard_appointments_created_at_idx;
    END IF;
END;
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS guard_appointments_created_at_idx
ON public.appointments (created_at);
