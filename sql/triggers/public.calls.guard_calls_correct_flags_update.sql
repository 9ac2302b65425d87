-- I3: booking flags written by the application are checked against the appointments.
CREATE TRIGGER guard_calls_correct_flags_update
AFTER UPDATE ON public.calls
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.correct_flags_after_call_update();
