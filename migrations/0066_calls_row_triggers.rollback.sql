-- Rollback of 0066_calls_row_triggers: the calls-side triggers and functions as they were at
-- 0065 (the earlier migrations' rollbacks drop them by name).
-- Locks: as 0066.
DROP TRIGGER IF EXISTS guard_calls_normalise ON public.calls;
DROP TRIGGER IF EXISTS guard_calls_check_flag_write ON public.calls;

CREATE OR REPLACE FUNCTION guard.normalise_call_direction()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.direction := guard.normalised_direction(NEW.direction);
    RETURN NEW;
END;
$$;

-- The legacy-row trigger of I1, if present, back on its own function.
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
        EXECUTE FUNCTION guard.normalise_call_direction();
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION guard.normalise_customer_link()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
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

CREATE OR REPLACE FUNCTION guard.correct_flags_after_call_insert()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    claiming_calls bigint[];
BEGIN
    claiming_calls := ARRAY(
        SELECT n.id FROM new_rows AS n WHERE n.appointment_made OR n.appointment_link_status = 'linked'
    );
    -- The INSERT runs only when there is something to record: a statement that is never run is
    -- never initialised (the everyday insert of a call claims nothing).
    IF pg_catalog.cardinality(claiming_calls) > 0 THEN
        INSERT INTO guard.flag_checks_at_commit (call_ids, written_by)
        VALUES (claiming_calls, 'insert');
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION guard.note_flag_write()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_catalog.set_config('booking_guard.i3_flags_written', 'on', TRUE);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION guard.correct_flags_after_call_update()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    written_calls bigint[];
    contradicting bigint[];
BEGIN
    IF
        pg_catalog.pg_trigger_depth() > 1
        OR pg_catalog.current_setting('booking_guard.i3_flags_written', TRUE) IS DISTINCT FROM 'on'
    THEN
        RETURN NULL;
    END IF;
    PERFORM pg_catalog.set_config('booking_guard.i3_flags_written', 'off', TRUE);
    written_calls := ARRAY(SELECT n.id FROM new_rows AS n);
    IF pg_catalog.cardinality(written_calls) = 1 THEN
        contradicting := ARRAY(
            SELECT f.id FROM guard.call_flags_to_correct(ARRAY[written_calls[1]], FALSE) AS f
        );
    ELSIF pg_catalog.cardinality(written_calls) > 1 THEN
        contradicting := ARRAY(
            SELECT f.id FROM guard.call_flags_to_correct(written_calls, FALSE) AS f
        );
    END IF;
    IF pg_catalog.cardinality(contradicting) > 0 THEN
        INSERT INTO guard.flag_checks_at_commit (call_ids, written_by)
        VALUES (contradicting, 'update');
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER guard_calls_normalise_direction
BEFORE INSERT OR UPDATE OF direction ON public.calls
FOR EACH ROW
WHEN (new.direction IS NULL OR new.direction NOT IN ('inbound', 'outbound'))
EXECUTE FUNCTION guard.normalise_call_direction();

CREATE OR REPLACE TRIGGER guard_calls_normalise_customer_link
BEFORE INSERT OR UPDATE OF customer_id, customer_link_status, customer_link_method, customer_link_confidence, customer_linked_at, from_number ON public.calls
FOR EACH ROW EXECUTE FUNCTION guard.normalise_customer_link();

CREATE OR REPLACE TRIGGER guard_calls_correct_flags_insert
AFTER INSERT ON public.calls
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.correct_flags_after_call_insert();

CREATE OR REPLACE TRIGGER guard_calls_correct_flags_update
AFTER UPDATE ON public.calls
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.correct_flags_after_call_update();

CREATE OR REPLACE TRIGGER guard_calls_note_flag_write
BEFORE UPDATE OF appointment_made,
appointment_link_status,
appointment_linked_at,
session_outcome,
booking_failed ON public.calls
FOR EACH STATEMENT
WHEN (pg_trigger_depth() = 0)
EXECUTE FUNCTION guard.note_flag_write();
