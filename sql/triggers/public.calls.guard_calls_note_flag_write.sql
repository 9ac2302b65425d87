-- I3: a statement that writes a booking flag is marked for the calls-side check
-- (guard.note_flag_write). Depth 0 only: Booking Guard's own updates of the flags are derived.
CREATE OR REPLACE TRIGGER guard_calls_note_flag_write
BEFORE UPDATE OF appointment_made,
appointment_link_status,
appointment_linked_at,
session_outcome,
booking_failed ON public.calls
FOR EACH STATEMENT
WHEN (pg_trigger_depth() = 0)
EXECUTE FUNCTION guard.note_flag_write();
