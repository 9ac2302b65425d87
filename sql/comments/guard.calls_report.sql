-- What BI tools show for guard.calls_report (docs/bi-columns.md is generated from these
-- comments).
COMMENT ON VIEW guard.calls_report IS
'one row per call of the reader''s companies: every column of `public.calls` a report needs, phone numbers masked (`+49 30 ****567`)';

COMMENT ON COLUMN guard.calls_report.id IS 'the call';
COMMENT ON COLUMN guard.calls_report.company_id IS 'the company the call belongs to';
COMMENT ON COLUMN guard.calls_report.retell_call_id IS 'the voice agent''s id of the call';
COMMENT ON COLUMN guard.calls_report.from_number_masked IS 'the caller''s number, masked (country and area code and the last three digits kept)';
COMMENT ON COLUMN guard.calls_report.to_number_masked IS 'the called number, masked (country and area code and the last three digits kept)';
COMMENT ON COLUMN guard.calls_report.status IS 'the call''s status, as the application records it';
COMMENT ON COLUMN guard.calls_report.direction IS '`inbound` or `outbound` (I1)';
COMMENT ON COLUMN guard.calls_report.customer_id IS 'the customer the call is linked to; NULL when unlinked or anonymous (I2)';
COMMENT ON COLUMN guard.calls_report.customer_link_status IS '`linked` (with a customer), `unlinked` or `anonymous` (I2)';
COMMENT ON COLUMN guard.calls_report.customer_link_method IS 'how the customer was found; set whenever a customer is linked (I2)';
COMMENT ON COLUMN guard.calls_report.customer_link_confidence IS 'how sure the link is, percent 0-100; set whenever a customer is linked (I2)';
COMMENT ON COLUMN guard.calls_report.customer_linked_at IS 'when the customer was linked (I2)';
COMMENT ON COLUMN guard.calls_report.session_outcome IS 'what the call achieved (`appointment_booked`, ...; the known set is the setting `known_session_outcomes`, I3/I8)';
COMMENT ON COLUMN guard.calls_report.appointment_made IS 'true when the call has an active appointment (kept true by Booking Guard, I3)';
COMMENT ON COLUMN guard.calls_report.appointment_link_status IS '`linked` when the call has an active appointment; `unlinked` once its last one went; `creation_failed` when its booking was rolled back (the calendar never made it); NULL when never linked (I3)';
COMMENT ON COLUMN guard.calls_report.appointment_linked_at IS 'when the appointment was linked (I3)';
COMMENT ON COLUMN guard.calls_report.booking_id IS 'the calendar''s booking id';
COMMENT ON COLUMN guard.calls_report.booking_confirmed IS 'the calendar confirmed the booking';
COMMENT ON COLUMN guard.calls_report.booking_failed IS 'the booking failed or was rolled back (I7); also true for a call queued because the service''s circuit was open, whose last attempt in guard.booking_attempts is `queued` (not a failed booking)';
COMMENT ON COLUMN guard.calls_report.booking_failure_reason IS 'why the booking failed, free text of the application, phone numbers masked';
COMMENT ON COLUMN guard.calls_report.requires_manual_processing IS 'flagged for a person by the application';
COMMENT ON COLUMN guard.calls_report.created_at IS 'when the call row was written';
COMMENT ON COLUMN guard.calls_report.updated_at IS 'when the call row last changed';
