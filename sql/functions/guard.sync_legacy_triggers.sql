-- I1, I2: the legacy-row triggers exist exactly while their CHECK is NOT VALID: created when
-- missing, dropped once the CHECK is valid. Returns what it did (trigger, created | dropped).
-- On an adopted database the CHECKs are NOT VALID until `guard db validate` has reconciled the
-- old rows, yet PostgreSQL checks every new row version against them: an update of an old row's
-- status would fail. While that lasts, these triggers normalise a row that would break a CHECK on
-- any update, whatever columns it sets, as the reconciler would (a missing direction becomes
-- inbound, the customer link follows customer_id); rows the reconciler leaves for a person (an
-- unknown direction, a confidence out of range) still fail, as they do on insert. Once the CHECK
-- is valid no stored row can break it, and such a trigger only costs: PostgreSQL compiles its
-- WHEN clause again for every statement that updates calls (docs/invariants.md, "Measured
-- reasons for the shapes in sql/"). Run by the migrations and by `guard db validate`.
-- Invoker rights: creating and dropping a trigger needs the table's owner, the migrating user.
CREATE OR REPLACE FUNCTION guard.sync_legacy_triggers()
RETURNS TABLE (trigger_name text, action text)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    legacy record;
BEGIN
    FOR legacy IN
        SELECT
            m.trigger_name,
            k.convalidated AS check_valid,
            EXISTS (
                SELECT FROM pg_trigger AS t
                WHERE t.tgrelid = 'public.calls'::regclass AND t.tgname = m.trigger_name
            ) AS present
        FROM (
            VALUES
            ('guard_calls_normalise_legacy_direction', 'guard_calls_direction_check'),
            ('guard_calls_normalise_legacy_link', 'guard_calls_customer_link_check')
        ) AS m (trigger_name, constraint_name)
        INNER JOIN pg_constraint AS k
            ON k.conrelid = 'public.calls'::regclass AND k.conname = m.constraint_name
        ORDER BY m.trigger_name
    LOOP
        trigger_name := legacy.trigger_name;
        IF legacy.check_valid AND legacy.present THEN
            EXECUTE format('DROP TRIGGER %I ON public.calls', legacy.trigger_name);
            action := 'dropped';
            RETURN NEXT;
        ELSIF NOT legacy.check_valid AND NOT legacy.present THEN
            IF legacy.trigger_name = 'guard_calls_normalise_legacy_direction' THEN
                CREATE TRIGGER guard_calls_normalise_legacy_direction
                BEFORE UPDATE ON public.calls
                FOR EACH ROW
                WHEN (new.direction IS NULL OR new.direction NOT IN ('inbound', 'outbound'))
                EXECUTE FUNCTION guard.normalise_customer_link();
            ELSE
                -- The WHEN clause is the CHECK's condition.
                CREATE TRIGGER guard_calls_normalise_legacy_link
                BEFORE UPDATE ON public.calls
                FOR EACH ROW
                WHEN (
                    NOT coalesce(
                        CASE
                            WHEN new.customer_id IS NOT NULL
                                THEN
                                    new.customer_link_status = 'linked'
                                    AND new.customer_linked_at IS NOT NULL
                                    AND new.customer_link_method IS NOT NULL
                                    AND new.customer_link_confidence IS NOT NULL
                            ELSE new.customer_link_status IN ('unlinked', 'anonymous')
                        END,
                        FALSE
                    )
                )
                EXECUTE FUNCTION guard.normalise_customer_link();
            END IF;
            action := 'created';
            RETURN NEXT;
        END IF;
    END LOOP;
END;
$$;
