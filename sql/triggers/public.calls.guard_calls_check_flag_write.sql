-- I3: booking flags written by the application are checked against the appointments, one call
-- at a time: every new call, and an update that writes a flag column (guard.check_flag_write).
CREATE OR REPLACE TRIGGER guard_calls_check_flag_write
AFTER INSERT OR UPDATE OF appointment_made,
appointment_link_status,
appointment_linked_at,
session_outcome,
booking_failed ON public.calls
FOR EACH ROW EXECUTE FUNCTION guard.check_flag_write();
