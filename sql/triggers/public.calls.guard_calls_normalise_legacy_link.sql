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
