-- I3: a new call claiming a booking it does not have is corrected.
CREATE OR REPLACE TRIGGER guard_calls_correct_flags_insert
AFTER INSERT ON public.calls
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.correct_flags_after_call_insert();
