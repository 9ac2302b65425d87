-- guard.enqueue_resolved_notices, every term: a delivered row on a given channel whose alert has
-- resolved is looked at once (resolution_queued_at), and queued as a pending alert_resolved
-- delivery only when its alert resolved after it was delivered; a row of another channel, not
-- delivered, already looked at, or of an open alert is left alone, and a notice queued already is
-- not queued twice.
BEGIN;
SELECT plan(4);

INSERT INTO guard.alerts (
    id, fingerprint, check_id, entity_type, entity_id, severity, message, status, resolved_at,
    resolution
)
OVERRIDING SYSTEM VALUE
VALUES
(8301, 'res:8301', 'booked_without_appointment', 'call', 8301, 'high', 'x', 'resolved', now() - interval '50 s', 'fixed'),
(8302, 'res:8302', 'booked_without_appointment', 'call', 8302, 'high', 'x', 'resolved', now() - interval '40 s', 'fixed'),
(8303, 'res:8303', 'booked_without_appointment', 'call', 8303, 'high', 'x', 'resolved', now() - interval '40 s', 'fixed'),
(8304, 'res:8304', 'booked_without_appointment', 'call', 8304, 'high', 'x', 'resolved', now() - interval '60 s', 'fixed'),
(8305, 'res:8305', 'booked_without_appointment', 'call', 8305, 'high', 'x', 'resolved', now() - interval '40 s', 'fixed'),
(8306, 'res:8306', 'booked_without_appointment', 'call', 8306, 'high', 'x', 'resolved', now() - interval '40 s', 'fixed'),
(8307, 'res:8307', 'booked_without_appointment', 'call', 8307, 'high', 'x', 'resolved', now() - interval '40 s', 'fixed'),
(8309, 'res:8309', 'booked_without_appointment', 'call', 8309, 'high', 'x', 'resolved', now() - interval '30 s', 'fixed');
INSERT INTO guard.alerts (id, fingerprint, check_id, entity_type, entity_id, severity, message)
OVERRIDING SYSTEM VALUE
VALUES (8308, 'res:8308', 'booked_without_appointment', 'call', 8308, 'high', 'x');

INSERT INTO guard.deliveries (kind, subject, channel, status, delivered_at, resolution_queued_at) VALUES
-- resolved exactly when delivered: nothing to announce
('alert', 8301, 'res', 'delivered', now() - interval '50 s', NULL),
-- resolved after it was delivered: announced
('alert', 8302, 'res', 'delivered', now() - interval '55 s', NULL),
-- a channel not asked about
('alert', 8303, 'other', 'delivered', now() - interval '55 s', NULL),
-- a second channel asked about, resolved before it was delivered
('alert', 8304, 'res2', 'delivered', now() - interval '50 s', NULL),
-- never delivered
('alert', 8305, 'res', 'pending', NULL, NULL),
('alert', 8306, 'res', 'failed', NULL, NULL),
-- looked at already
('alert', 8307, 'res', 'delivered', now() - interval '55 s', now() - interval '5 s'),
-- its alert is open
('alert', 8308, 'res', 'delivered', now() - interval '55 s', NULL),
-- its notice is queued already
('alert', 8309, 'res2', 'delivered', now() - interval '55 s', NULL);
INSERT INTO guard.deliveries (kind, subject, channel, status, delivered_at)
VALUES ('alert_resolved', 8309, 'res2', 'delivered', now() - interval '1 s');

SELECT is(
    guard.enqueue_resolved_notices(ARRAY['res', 'res2']), 1,
    'enqueue_resolved_notices: one notice, for the alert resolved after it was delivered'
);
SELECT results_eq(
    $$SELECT d.subject, d.resolution_queued_at IS NULL, n.status
      FROM guard.deliveries AS d
      LEFT JOIN guard.deliveries AS n
          ON n.kind = 'alert_resolved' AND n.subject = d.subject AND n.channel = d.channel
      WHERE d.kind = 'alert' AND d.subject BETWEEN 8301 AND 8309 ORDER BY d.subject$$,
    $$VALUES
        (8301::bigint, FALSE, NULL::text),
        (8302, FALSE, 'pending'),
        (8303, TRUE, NULL),
        (8304, FALSE, NULL),
        (8305, TRUE, NULL),
        (8306, TRUE, NULL),
        (8307, FALSE, NULL),
        (8308, TRUE, NULL),
        (8309, FALSE, 'delivered')$$,
    'enqueue_resolved_notices: the delivered rows of resolved alerts on those channels are looked '
    || 'at; only 8302 is queued; every other row is left as it was'
);
SELECT is(
    (
        SELECT resolution_queued_at FROM guard.deliveries
        WHERE subject = 8307
    ),
    now() - interval '5 s',
    'enqueue_resolved_notices: a row looked at keeps when it was'
);
SELECT is(
    guard.enqueue_resolved_notices(ARRAY['res', 'res2']), 0,
    'enqueue_resolved_notices: a second call queues nothing (announced once)'
);

SELECT * FROM finish();
ROLLBACK;
