-- I3: booking flags written by the application are checked against the appointments, for a
-- statement that wrote a flag column (marked by guard_calls_note_flag_write). Only the new row
-- versions are read.
CREATE OR REPLACE TRIGGER guard_calls_correct_flags_update
AFTER UPDATE ON public.calls
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.correct_flags_after_call_update();
