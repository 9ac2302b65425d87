-- I2: the customer link fields follow customer_id.
CREATE OR REPLACE TRIGGER guard_calls_normalise_customer_link
BEFORE INSERT OR UPDATE OF customer_id, customer_link_status, customer_link_method, customer_link_confidence, customer_linked_at, from_number ON public.calls
FOR EACH ROW EXECUTE FUNCTION guard.normalise_customer_link();
