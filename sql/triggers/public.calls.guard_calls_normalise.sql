-- I1, I2: normalised before the row is stored, on insert and on an update that writes the
-- direction, the customer link or the caller's number. An update of other columns cannot break
-- the (validated) CHECKs; on an adopted database whose CHECKs are still NOT VALID, the legacy-row
-- triggers cover those updates until `guard db validate` (guard.sync_legacy_triggers).
CREATE OR REPLACE TRIGGER guard_calls_normalise
BEFORE INSERT OR UPDATE OF direction, customer_id, customer_link_status, customer_link_method, customer_link_confidence, customer_linked_at, from_number ON public.calls
FOR EACH ROW EXECUTE FUNCTION guard.normalise_customer_link();
