-- I3: a new call claiming a booking its appointments cannot show yet is checked at commit
-- (guard.check_flag_claim). A trigger of its own, not an INSERT event of
-- guard_calls_check_flag_write: a new call then runs one PL/pgSQL expression instead of three.
CREATE OR REPLACE TRIGGER guard_calls_check_flag_claim
AFTER INSERT ON public.calls
FOR EACH ROW EXECUTE FUNCTION guard.check_flag_claim();
