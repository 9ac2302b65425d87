-- What BI tools show for guard.booking_attempts (docs/bi-columns.md is generated from these
-- comments).
COMMENT ON TABLE guard.booking_attempts IS
'one row per attempt to book a call in the external calendar (the booking journal), recorded by the application''s booking path before the calendar is called';

COMMENT ON COLUMN guard.booking_attempts.id IS 'the attempt';
COMMENT ON COLUMN guard.booking_attempts.company_id IS 'the company of the call';
COMMENT ON COLUMN guard.booking_attempts.call_id IS 'the call being booked';
COMMENT ON COLUMN guard.booking_attempts.service_id IS 'the service being booked';
COMMENT ON COLUMN guard.booking_attempts.idempotency_key IS 'the key the calendar received with the request (a UUID, unique): look the booking up in the calendar with it';
COMMENT ON COLUMN guard.booking_attempts.state IS '`calling` (calendar asked), `booked`, `failed`, `queued` (the service''s circuit was open or its bulkhead full: the calendar was not asked, the call was queued for review; not a failed booking), `unknown` (still calling after `booking_attempt_timeout_seconds` (120 s): in review), `recovered` (unknown, then found booked)';
COMMENT ON COLUMN guard.booking_attempts.started_by IS 'the database login that started it (the booking application''s)';
COMMENT ON COLUMN guard.booking_attempts.created_at IS 'when the attempt was recorded, just before the calendar was called';
COMMENT ON COLUMN guard.booking_attempts.finished_at IS 'when it was settled (`booked`, `failed`, `queued`, `recovered`); NULL while `calling` or `unknown`';
COMMENT ON COLUMN guard.booking_attempts.booking_uid IS 'the calendar''s booking uid: set when `booked` or `recovered`; when `failed`, the uid the calendar returned, if the booking path passed one';
COMMENT ON COLUMN guard.booking_attempts.appointment_id IS 'the appointment recorded for it: set when `booked` or `recovered`, else NULL';
COMMENT ON COLUMN guard.booking_attempts.failure_reason IS 'why it failed: the review reason (`calendar_booking_failure`, `validation_failure`, ...) or `settled in review by <label>`; for `queued` the review reason it was queued under; NULL unless `failed` or `queued`';
COMMENT ON COLUMN guard.booking_attempts.calendar_calls IS 'how many times the booking path asked the calendar for it, retries included (0: the circuit refused before the calendar was asked); NULL when something else settled it (`recover_attempts`, a reconciliation, a person), while `calling` or `unknown`, or for attempts before migration 0100';
COMMENT ON COLUMN guard.booking_attempts.trace_id IS 'the OpenTelemetry trace id (32 hex digits) of the booking that began the attempt, when the application traces (docs/tracing.md); NULL without tracing';
