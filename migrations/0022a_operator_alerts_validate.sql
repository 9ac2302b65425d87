-- Validate the widened delivery status CHECK (added NOT VALID by 0022_operator_alerts). VALIDATE
-- takes a SHARE UPDATE EXCLUSIVE lock: `guard watch` keeps claiming and marking deliveries while
-- it scans.

ALTER TABLE guard.alert_deliveries VALIDATE CONSTRAINT alert_deliveries_status_check;
