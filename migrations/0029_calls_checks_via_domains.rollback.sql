-- Rollback of 0029_calls_checks_via_domains: the CHECKs that cast to domains go, the written-out
-- ones get their names back, the domains go. Locks: ACCESS EXCLUSIVE on public.calls for an
-- instant (catalog only).

ALTER TABLE public.calls
DROP CONSTRAINT guard_calls_direction_check,
DROP CONSTRAINT guard_calls_customer_link_check;

-- The written-out CHECKs get their names back. 0029b's rollback re-adds them before this one runs;
-- a rollback preview cannot run that one (docs/dba.md) and finds none: then they are added here,
-- NOT VALID (the preview discards its transaction).
DO $$
BEGIN
    IF to_regclass('public.calls') IS NULL THEN
        RETURN;
    END IF;
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

ALTER TABLE public.calls
-- squawk-ignore renaming-object
RENAME CONSTRAINT guard_calls_direction_written_out TO guard_calls_direction_check;

ALTER TABLE public.calls
-- squawk-ignore renaming-object
RENAME CONSTRAINT guard_calls_customer_link_written_out TO guard_calls_customer_link_check;

ALTER TABLE public.calls
-- squawk-ignore renaming-object
RENAME CONSTRAINT guard_calls_link_confidence_written_out TO guard_calls_link_confidence_range;

UPDATE guard.rules
SET constraint_names = '{guard_calls_customer_link_check,guard_calls_link_confidence_range}'
WHERE id = 'I2_customer_link';

DROP DOMAIN guard.customer_link;

DROP TYPE guard.customer_link_fields;

DROP DOMAIN guard.call_direction;

SELECT * FROM guard.sync_legacy_triggers();

SELECT guard.refresh_rule_stages();
