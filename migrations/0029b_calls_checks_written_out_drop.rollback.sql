-- transactional: false
-- Rollback of 0029b: the written-out CHECKs come back, NOT VALID first (an instant of ACCESS
-- EXCLUSIVE on public.calls, no scan), then validated where the CHECK that casts to a domain is
-- valid (SHARE UPDATE EXCLUSIVE while it scans: the application goes on writing). Each statement
-- commits on its own and can be run again.

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_constraint AS k
        WHERE
            k.conrelid = 'public.calls'::regclass
            AND k.conname = 'guard_calls_direction_written_out'
    ) THEN
        ALTER TABLE public.calls
        ADD CONSTRAINT guard_calls_direction_written_out
        CHECK (direction IS NOT NULL AND direction IN ('inbound', 'outbound')) NOT VALID,
        ADD CONSTRAINT guard_calls_customer_link_written_out
        CHECK (
            coalesce(
                CASE
                    WHEN customer_id IS NOT NULL
                        THEN
                            customer_link_status = 'linked'
                            AND customer_linked_at IS NOT NULL
                            AND customer_link_method IS NOT NULL
                            AND customer_link_confidence IS NOT NULL
                    ELSE customer_link_status IN ('unlinked', 'anonymous')
                END,
                FALSE
            )
        ) NOT VALID,
        ADD CONSTRAINT guard_calls_link_confidence_written_out
        CHECK (customer_link_confidence BETWEEN 0 AND 100) NOT VALID;
    END IF;
END;
$$;

DO $$
DECLARE
    valid_new text[];
BEGIN
    valid_new := ARRAY(
        SELECT k.conname::text
        FROM pg_catalog.pg_constraint AS k
        WHERE
            k.conrelid = 'public.calls'::regclass
            AND k.convalidated
            AND k.conname IN ('guard_calls_direction_check', 'guard_calls_customer_link_check')
    );
    IF 'guard_calls_direction_check' = ANY (valid_new) THEN
        ALTER TABLE public.calls VALIDATE CONSTRAINT guard_calls_direction_written_out;
    END IF;
    IF 'guard_calls_customer_link_check' = ANY (valid_new) THEN
        ALTER TABLE public.calls VALIDATE CONSTRAINT guard_calls_customer_link_written_out;
        ALTER TABLE public.calls VALIDATE CONSTRAINT guard_calls_link_confidence_written_out;
    END IF;
END;
$$;
