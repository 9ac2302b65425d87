-- 0029a: validate the CHECKs 0029_calls_checks_via_domains added NOT VALID, each where the
-- written-out CHECKs it replaces are valid: the rule is the same, so no stored row breaks it and
-- the scan cannot fail. Where one of them is still NOT VALID (an adopted database before
-- `guard db validate`), the new CHECK stays NOT VALID too and `guard db validate` takes it on
-- with the others.
-- Then the legacy-row triggers follow the new CHECKs (guard.sync_legacy_triggers: they exist
-- exactly while their CHECK is NOT VALID) and the rules' stages are refreshed.
-- Locks: SHARE UPDATE EXCLUSIVE on public.calls while each VALIDATE scans (reads and writes go
-- on) and until the migration commits; ACCESS EXCLUSIVE for an instant only if a legacy-row
-- trigger has to be created or dropped.

DO $$
BEGIN
    IF (
        SELECT coalesce(bool_and(k.convalidated), FALSE)
        FROM pg_catalog.pg_constraint AS k
        WHERE
            k.conrelid = 'public.calls'::regclass
            AND k.conname = 'guard_calls_direction_written_out'
    ) THEN
        ALTER TABLE public.calls VALIDATE CONSTRAINT guard_calls_direction_check;
    END IF;
    IF (
        SELECT count(*) = 2 AND coalesce(bool_and(k.convalidated), FALSE)
        FROM pg_catalog.pg_constraint AS k
        WHERE
            k.conrelid = 'public.calls'::regclass
            AND k.conname IN (
                'guard_calls_customer_link_written_out', 'guard_calls_link_confidence_written_out'
            )
    ) THEN
        ALTER TABLE public.calls VALIDATE CONSTRAINT guard_calls_customer_link_check;
    END IF;
END;
$$;

SELECT * FROM guard.sync_legacy_triggers();

SELECT guard.refresh_rule_stages();
