-- I3: a new call claiming a booking its appointments cannot show yet is checked at commit
-- (guard.check_flag_claim). A trigger of its own, not an INSERT event of
-- guard_calls_check_flag_write: a new call then runs one PL/pgSQL expression instead of three.
-- Only a call that claims something (the contradiction rule with no appointment, or the outcome
-- appointment_booked) runs the function: the everyday new call pays for this expression alone.
CREATE OR REPLACE TRIGGER guard_calls_check_flag_claim
AFTER INSERT ON public.calls
FOR EACH ROW
WHEN (
    guard.call_flags_contradict(
        new.appointment_made, new.appointment_link_status, new.appointment_linked_at,
        new.session_outcome, new.booking_failed, FALSE
    )
    OR new.session_outcome = 'appointment_booked'
)
EXECUTE FUNCTION guard.check_flag_claim();
