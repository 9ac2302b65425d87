-- What BI tools show for guard.validation_metrics (docs/bi-columns.md is generated from these
-- comments).
COMMENT ON TABLE guard.validation_metrics IS
'one row per post-booking validation (`guard.validate_booking`, which the application calls after each booking): outcome and latency; kept 30 days (`retention_validation_metrics_days`)';

COMMENT ON COLUMN guard.validation_metrics.id IS 'the row''s id, increasing';
COMMENT ON COLUMN guard.validation_metrics.company_id IS 'the company of the call';
COMMENT ON COLUMN guard.validation_metrics.call_id IS 'the call whose booking was validated';
COMMENT ON COLUMN guard.validation_metrics.appointment_id IS 'the appointment the application recorded for the booking; it may not exist (`appointment_not_found`, or removed when the booking was rolled back)';
COMMENT ON COLUMN guard.validation_metrics.ok IS '`true`: the booking is consistent; `false`: it is not (`failure_reason` says why) and the application rolls it back';
COMMENT ON COLUMN guard.validation_metrics.failure_reason IS '`appointment_not_found`, `appointment_inactive`, `appointment_not_on_call`, `company_mismatch`, `booking_uid_mismatch`, `appointment_not_recent`, `call_flags_disagree`; NULL when `ok`';
COMMENT ON COLUMN guard.validation_metrics.latency_ms IS 'how long the validation took in the database, ms (not the application''s round trip)';
COMMENT ON COLUMN guard.validation_metrics.measured_at IS 'when the validation ran; its UTC day is the `day` of `guard.validation_latency_daily`';
