-- Drop what 0011_alert_delivery created. guard.alerts.delivered_at keeps its values.
DROP FUNCTION guard.release_alert_deliveries(text, text);

DROP FUNCTION guard.fail_alert_deliveries(
    text, bigint[], text, double precision, double precision, integer
);

DROP FUNCTION guard.complete_alert_deliveries(text, bigint[]);

DROP FUNCTION guard.claim_alert_deliveries(text, text, integer, double precision);

DROP FUNCTION guard.enqueue_alert_deliveries(text[]);

DROP TABLE guard.alert_deliveries;
