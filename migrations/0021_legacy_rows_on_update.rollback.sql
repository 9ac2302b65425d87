-- Back to the normalisers of 0006_invariants: direction only when it is written, no legacy-link
-- trigger.

DROP TRIGGER guard_calls_normalise_legacy_link ON public.calls;

DROP TRIGGER guard_calls_normalise_direction ON public.calls;

-- I1: a missing direction becomes inbound before the row is stored.
CREATE TRIGGER guard_calls_normalise_direction
BEFORE INSERT OR UPDATE OF direction ON public.calls
FOR EACH ROW EXECUTE FUNCTION guard.normalise_call_direction();
