-- Old rows of an adopted database that break I1 or I2 no longer make the application's updates
-- fail between `guard db apply` and `guard db validate`. The guard CHECKs are NOT VALID until
-- validate has reconciled those rows, but PostgreSQL checks every new row version against them,
-- and the normalisers fired only when the direction or link columns were written: an update of
-- a legacy call's status failed. Now a row that would break the rule is normalised on any update,
-- as reconcile would (a missing direction becomes inbound, the customer link follows
-- customer_id); rows reconcile leaves for a person (an unknown direction, a confidence out of
-- range) still fail, as they do on insert. Locks: DROP and CREATE TRIGGER on public.calls take
-- an ACCESS EXCLUSIVE lock for an instant (catalog only), under the migrator's lock_timeout and
-- retries.

DROP TRIGGER guard_calls_normalise_direction ON public.calls;

-- I1: a missing direction becomes inbound before the row is stored. On every insert, and on
-- every update that would store a direction the CHECK refuses, whichever columns it sets: on an
-- adopted database the CHECK is NOT VALID until `guard db validate`, yet PostgreSQL checks each
-- new row version against it, so an old row without a direction would make the application's
-- update of its status fail. The WHEN clause keeps the function off the everyday update.
CREATE TRIGGER guard_calls_normalise_direction
BEFORE INSERT OR UPDATE ON public.calls
FOR EACH ROW
WHEN (new.direction IS NULL OR new.direction NOT IN ('inbound', 'outbound'))
EXECUTE FUNCTION guard.normalise_call_direction();

-- I2: an update of any column of a row whose customer link breaks the rule normalises the link
-- (guard.normalise_customer_link, as guard_calls_normalise_customer_link does when the link
-- columns are written). Only an adopted database's old rows can break it, before
-- `guard db validate` reconciles them: the CHECK is NOT VALID until then, yet PostgreSQL checks
-- each new row version against it, so without this the application's update of such a call's
-- status would fail. The WHEN clause is the CHECK's condition: the everyday update does not
-- call the function.
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
