-- Rollback of 0100c_booking_attempt_trace_id: the journal forgets the trace ids (the traces
-- themselves live in the tracing back end).
-- Locks: ACCESS EXCLUSIVE on guard.booking_attempts for an instant to drop the column (no
-- rewrite).

-- squawk-ignore ban-drop-column
ALTER TABLE guard.booking_attempts DROP COLUMN trace_id;
