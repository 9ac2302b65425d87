-- 0066_calls_row_triggers: the calls-side triggers become two row-level ones (their definitions
-- are in sql/: guard_calls_normalise, guard_calls_check_flag_write). The insert of a call fired
-- three triggers (direction with a WHEN clause, customer link, the claim of a booking: a
-- statement trigger with a transition table); it fires two row triggers. The application's write
-- of booking flags was marked by a BEFORE statement trigger and checked by an AFTER statement
-- trigger that also fired, with a transition table, on every other update of a call; it is
-- checked by a row trigger that fires only for an update of a flag column. Same invariants, same commit-time judgement
-- (docs/invariants.md, "Measured reasons for the shapes in sql/").
-- This drops what sql/ no longer defines; the definitions step of the same transaction creates
-- the new triggers, so no write between sees calls without them.
-- Locks: DROP TRIGGER takes ACCESS EXCLUSIVE on public.calls for an instant (catalog only),
-- under the migrator's lock_timeout and retries.
DROP TRIGGER IF EXISTS guard_calls_normalise_direction ON public.calls;
DROP TRIGGER IF EXISTS guard_calls_normalise_customer_link ON public.calls;
DROP TRIGGER IF EXISTS guard_calls_correct_flags_insert ON public.calls;
DROP TRIGGER IF EXISTS guard_calls_note_flag_write ON public.calls;
DROP TRIGGER IF EXISTS guard_calls_correct_flags_update ON public.calls;
-- The legacy-row trigger of I1 (present only while its CHECK is NOT VALID) runs the I2 normaliser
-- from now on, which does I1 as well (sql/functions/guard.normalise_customer_link.sql, the same
-- body, given here so that no state between this migration and the definitions step has a
-- legacy-row trigger that leaves a direction unset); guard.normalise_call_direction, its
-- function until now, goes (guard.sync_legacy_triggers).
CREATE OR REPLACE FUNCTION guard.normalise_customer_link()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.direction IS NULL OR NEW.direction NOT IN ('inbound', 'outbound') THEN
        NEW.direction := guard.normalised_direction(NEW.direction);
    END IF;

    IF NEW.customer_id IS NULL THEN
        NEW.customer_link_status := CASE
            WHEN NEW.customer_link_status = 'anonymous'
                OR nullif(pg_catalog.btrim(coalesce(NEW.from_number, '')), '') IS NULL
                OR pg_catalog.lower(pg_catalog.btrim(NEW.from_number))
                IN ('anonymous', 'unknown', 'restricted', 'private')
                THEN 'anonymous'
            ELSE 'unlinked'
        END;
        NEW.customer_linked_at := NULL;
        NEW.customer_link_method := NULL;
        NEW.customer_link_confidence := NULL;
        RETURN NEW;
    END IF;

    IF TG_OP = 'UPDATE' AND NEW.customer_id IS DISTINCT FROM OLD.customer_id THEN
        IF NEW.customer_linked_at IS NOT DISTINCT FROM OLD.customer_linked_at THEN
            NEW.customer_linked_at := NULL;
        END IF;
        IF NEW.customer_link_method IS NOT DISTINCT FROM OLD.customer_link_method THEN
            NEW.customer_link_method := NULL;
        END IF;
        IF NEW.customer_link_confidence IS NOT DISTINCT FROM OLD.customer_link_confidence THEN
            NEW.customer_link_confidence := NULL;
        END IF;
    END IF;

    NEW.customer_link_status := 'linked';
    NEW.customer_linked_at := coalesce(NEW.customer_linked_at, pg_catalog.now());
    NEW.customer_link_method := coalesce(
        NEW.customer_link_method, guard.setting('default_customer_link_method') #>> '{}'
    );
    NEW.customer_link_confidence := coalesce(
        NEW.customer_link_confidence,
        (guard.setting('default_customer_link_confidence') #>> '{}')::numeric
    );
    RETURN NEW;
END;
$$;
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
-- Their only callers were the triggers above.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS guard.correct_flags_after_call_insert();
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS guard.note_flag_write();
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS guard.correct_flags_after_call_update();
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS guard.normalise_call_direction();
