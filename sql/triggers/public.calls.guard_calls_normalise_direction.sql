-- I1: a missing direction becomes inbound before the row is stored.
CREATE TRIGGER guard_calls_normalise_direction
BEFORE INSERT OR UPDATE OF direction ON public.calls
FOR EACH ROW EXECUTE FUNCTION guard.normalise_call_direction();
