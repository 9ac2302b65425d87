-- 0100c_booking_attempt_trace_id: the booking journal keeps the OpenTelemetry trace id of the
-- booking that began an attempt (guard.begin_booking_attempt's trace_id, passed by the booking
-- path when the application traces; docs/tracing.md), so that an attempt in review leads to its
-- trace. NULL without tracing and for every attempt before this migration.
-- The CHECK is added NOT VALID (new rows are checked at once) and validated by 0100d; every
-- existing row is NULL, which meets it.
-- Locks: ACCESS EXCLUSIVE on guard.booking_attempts for an instant (a nullable column without a
-- default is a catalog change; NOT VALID: no scan).

ALTER TABLE guard.booking_attempts
ADD COLUMN trace_id text;

ALTER TABLE guard.booking_attempts
ADD CONSTRAINT booking_attempts_trace_id_check CHECK (trace_id ~ '^[0-9a-f]{32}$') NOT VALID;
