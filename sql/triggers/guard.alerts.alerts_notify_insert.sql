-- Wake the alert dispatcher once per statement that inserted alerts.
CREATE OR REPLACE TRIGGER alerts_notify_insert
AFTER INSERT ON guard.alerts
REFERENCING NEW TABLE AS new_alerts
FOR EACH STATEMENT EXECUTE FUNCTION guard.notify_new_alerts();
