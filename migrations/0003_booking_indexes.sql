-- transactional: false
-- Indexes the guard's queries need. Built CONCURRENTLY so that an adopted table with millions of
-- rows keeps taking writes. Each index is two statements so that re-running after an interrupted
-- build is safe: the first drops an INVALID leftover of a failed build (PostgreSQL keeps those and
-- IF NOT EXISTS would then skip the index), the second builds it.

-- flags on calls are recomputed per call: every appointment write looks up its call's siblings
DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE i.indexrelid = to_regclass('public.guard_appointments_call_id_idx') AND NOT i.indisvalid
    ) THEN
        DROP INDEX public.guard_appointments_call_id_idx;
    END IF;
END;
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS guard_appointments_call_id_idx ON public.appointments (call_id);

-- detection and reports work on recent windows of calls
DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE i.indexrelid = to_regclass('public.guard_calls_created_at_idx') AND NOT i.indisvalid
    ) THEN
        DROP INDEX public.guard_calls_created_at_idx;
    END IF;
END;
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS guard_calls_created_at_idx ON public.calls (created_at);

-- reconciliation links orphaned appointments to calls by booking uid
DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE i.indexrelid = to_regclass('public.guard_calls_booking_id_idx') AND NOT i.indisvalid
    ) THEN
        DROP INDEX public.guard_calls_booking_id_idx;
    END IF;
END;
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS guard_calls_booking_id_idx ON public.calls (booking_id);

-- reconciliation and validation look appointments up by booking uid
DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
        WHERE i.indexrelid = to_regclass('public.guard_appointments_booking_uid_idx') AND NOT i.indisvalid
    ) THEN
        DROP INDEX public.guard_appointments_booking_uid_idx;
    END IF;
END;
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS guard_appointments_booking_uid_idx ON public.appointments (calcom_v2_booking_id);
