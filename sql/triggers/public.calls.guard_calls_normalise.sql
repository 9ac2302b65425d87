-- I1, I2: normalised before the row is stored, on insert and on an update that writes the
-- direction, the customer link or the caller's number. An update of other columns cannot break
-- the (validated) CHECKs; on an adopted database whose CHECKs are still NOT VALID, the legacy-row
-- triggers cover those updates until `guard db validate` (guard.sync_legacy_triggers).
-- It replaces the triggers of I1 and I2 (until 0066); the legacy-row trigger of I1, present only
-- while its CHECK is NOT VALID, runs the same function from then on (guard.sync_legacy_triggers),
-- so the function it ran until then can go. Dropped here, at the triggers' turn in the
-- definitions step, not in a migration: the lock on calls is then held for the rest of the step
-- only (docs/dba.md, "The regression run").
DROP TRIGGER IF EXISTS guard_calls_normalise_direction ON public.calls;
DROP TRIGGER IF EXISTS guard_calls_normalise_customer_link ON public.calls;
DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_trigger
        WHERE tgrelid = 'public.calls'::regclass AND tgname = 'guard_calls_normalise_legacy_direction'
    ) THEN
        CREATE OR REPLACE TRIGGER guard_calls_normalise_legacy_direction
        BEFORE UPDATE ON public.calls
        FOR EACH ROW
        WHEN (new.direction IS NULL OR new.direction NOT IN ('inbound', 'outbound'))
        EXECUTE FUNCTION guard.normalise_customer_link();
    END IF;
END;
$$;
DROP FUNCTION IF EXISTS guard.normalise_call_direction();

CREATE OR REPLACE TRIGGER guard_calls_normalise
BEFORE INSERT OR UPDATE OF direction, customer_id, customer_link_status, customer_link_method, customer_link_confidence, customer_linked_at, from_number ON public.calls
FOR EACH ROW EXECUTE FUNCTION guard.normalise_customer_link();
