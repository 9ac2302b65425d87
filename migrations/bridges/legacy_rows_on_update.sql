-- Bridge from 0006_invariants to 0021_legacy_rows_on_update (guard/db/bridges.py): on an adopted
-- database, 0006 adds the I1 and I2 CHECKs NOT VALID, so PostgreSQL checks every new row version
-- against them, but the normalisers of 0006 fire only when the direction or link columns are
-- written. Until 0021 (which normalises such rows on any update) commits, the application's
-- update of an old row's status was refused: 48-65 writes while applying a 2-million-call
-- database, 204 at 20 million. Released migrations are immutable, so `guard db apply` creates
-- these two triggers in 0006's transaction and drops them in 0021's. They are 0021's triggers
-- under names of their own; the WHEN clauses are the CHECKs' conditions, so the everyday update
-- does not call the functions.

CREATE TRIGGER guard_calls_bridge_direction
BEFORE UPDATE ON public.calls
FOR EACH ROW
WHEN (new.direction IS NULL OR new.direction NOT IN ('inbound', 'outbound'))
EXECUTE FUNCTION guard.normalise_call_direction();

CREATE TRIGGER guard_calls_bridge_link
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
