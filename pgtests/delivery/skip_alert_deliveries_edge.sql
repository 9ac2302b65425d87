-- guard.skip_alert_deliveries at its time: "seen before" is strict. An alert last seen exactly
-- at the time is not skipped, neither a delivery not yet queued nor a pending one, and it is not
-- done; one last seen a microsecond earlier is skipped in both ways and done.
BEGIN;
SELECT plan(3);

INSERT INTO guard.alerts (
    id, fingerprint, check_id, entity_type, severity, message, first_seen_at, last_seen_at
)
OVERRIDING SYSTEM VALUE
VALUES
(8601, 'edge:queued-before', 'pgtap', 'job', 'high', 'x', now() - interval '2 days', now() - interval '1 day 1 microsecond'),
(8602, 'edge:queued-at', 'pgtap', 'job', 'high', 'x', now() - interval '2 days', now() - interval '1 day'),
(8603, 'edge:pending-before', 'pgtap', 'job', 'high', 'x', now() - interval '2 days', now() - interval '1 day 1 microsecond'),
(8604, 'edge:pending-at', 'pgtap', 'job', 'high', 'x', now() - interval '2 days', now() - interval '1 day');
INSERT INTO guard.deliveries (kind, subject, channel, status) VALUES
('alert', 8603, 'email', 'pending'),
('alert', 8604, 'email', 'pending');

SELECT is(
    guard.skip_alert_deliveries(now() - interval '1 day', '{email}', 'pgtap'),
    2,
    'skip_alert_deliveries: the two alerts last seen before the time, not the two seen exactly then'
);
SELECT results_eq(
    $$SELECT a.id, d.status, a.delivered_at IS NOT NULL
      FROM guard.alerts AS a LEFT JOIN guard.deliveries AS d ON a.id = d.subject
      WHERE a.id BETWEEN 8601 AND 8604 ORDER BY a.id$$,
    $$VALUES (8601::bigint, 'skipped'::text, TRUE), (8602, NULL, FALSE), (8603, 'skipped', TRUE),
             (8604, 'pending', FALSE)$$,
    'skip_alert_deliveries: skipped and done before the time; at it, nothing queued, pending kept'
);
SELECT is(
    (
        SELECT deliveries FROM guard.delivery_skips
        WHERE skipped_by = 'pgtap'
    ),
    2,
    'skip_alert_deliveries: the audit row counts the two'
);

SELECT * FROM finish();
ROLLBACK;
