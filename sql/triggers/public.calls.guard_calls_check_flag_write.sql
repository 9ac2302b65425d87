-- I3: booking flags written by the application are checked against the appointments, one call
-- at a time: an update that writes a flag column (guard.check_flag_write); a new call's claim is
-- guard_calls_check_flag_claim's.
-- It replaces (0066) the statement triggers of a new call's claim and of a flag write, and the
-- BEFORE statement mark; dropped here, at the triggers' turn in the definitions step, with their
-- functions (see public.calls.guard_calls_normalise.sql why not in a migration).
DROP TRIGGER IF EXISTS guard_calls_correct_flags_insert ON public.calls;
DROP TRIGGER IF EXISTS guard_calls_note_flag_write ON public.calls;
DROP TRIGGER IF EXISTS guard_calls_correct_flags_update ON public.calls;
DROP FUNCTION IF EXISTS guard.correct_flags_after_call_insert();
DROP FUNCTION IF EXISTS guard.note_flag_write();
DROP FUNCTION IF EXISTS guard.correct_flags_after_call_update();

CREATE OR REPLACE TRIGGER guard_calls_check_flag_write
AFTER UPDATE OF appointment_made,
appointment_link_status,
appointment_linked_at,
session_outcome,
booking_failed ON public.calls
FOR EACH ROW EXECUTE FUNCTION guard.check_flag_write();
