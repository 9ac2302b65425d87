-- guard.claim_resolved_deliveries, every term of both its statements: a delivered notification
-- of an alert that resolved at or before it was delivered has nothing to announce and is settled
-- (resolved_sent_at = delivered_at); the others of the channel whose alert has resolved since
-- are claimed for a lease, the earliest resolved first, at most max_rows; a row of another
-- channel, not delivered, already announced, of an open alert, or under a running lease (one
-- that ends exactly now still runs) is left alone.
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
(8309, 'res:8309', 'booked_without_appointment', 'call', 8309, 'high', 'x', 'resolved', now() - interval '30 s', 'fixed'),
(8310, 'res:8310', 'booked_without_appointment', 'call', 8310, 'high', 'x', 'resolved', now() - interval '40 s', 'fixed'),
(8311, 'res:8311', 'booked_without_appointment', 'call', 8311, 'high', 'x', 'resolved', now() - interval '40 s', 'fixed'),
(8312, 'res:8312', 'booked_without_appointment', 'call', 8312, 'high', 'x', 'resolved', now() - interval '10 s', 'fixed'),
(8313, 'res:8313', 'booked_without_appointment', 'call', 8313, 'high', 'x', 'resolved', now() - interval '60 s', 'fixed');
INSERT INTO guard.alerts (id, fingerprint, check_id, entity_type, entity_id, severity, message)
OVERRIDING SYSTEM VALUE
VALUES (8308, 'res:8308', 'booked_without_appointment', 'call', 8308, 'high', 'x');

INSERT INTO guard.alert_deliveries (alert_id, channel, status, delivered_at, resolved_sent_at, claimed_by, claimed_until) VALUES
-- resolved exactly when delivered: nothing to announce
(8301, 'res', 'delivered', now() - interval '50 s', NULL, NULL, NULL),
-- resolved after it was delivered: announced
(8302, 'res', 'delivered', now() - interval '55 s', NULL, NULL, NULL),
-- another channel, to announce and to settle
(8303, 'other', 'delivered', now() - interval '55 s', NULL, NULL, NULL),
(8304, 'other', 'delivered', now() - interval '50 s', NULL, NULL, NULL),
-- never delivered
(8305, 'res', 'pending', NULL, NULL, NULL, NULL),
(8306, 'res', 'failed', NULL, NULL, NULL, NULL),
-- announced already
(8307, 'res', 'delivered', now() - interval '55 s', now() - interval '5 s', NULL, NULL),
-- its alert is open
(8308, 'res', 'delivered', now() - interval '55 s', NULL, NULL, NULL),
-- another worker's lease ended a second ago; one runs 30 s more; one ends exactly now
(8309, 'res', 'delivered', now() - interval '55 s', NULL, 'w2', now() - interval '1 s'),
(8310, 'res', 'delivered', now() - interval '55 s', NULL, 'w2', now() + interval '30 s'),
(8311, 'res', 'delivered', now() - interval '55 s', NULL, 'w2', now()),
-- resolved last
(8312, 'res', 'delivered', now() - interval '55 s', NULL, NULL, NULL),
-- resolved before it was delivered, and announced already: it keeps when
(8313, 'res', 'delivered', now() - interval '50 s', now() - interval '5 s', NULL, NULL);

SELECT results_eq(
    $$SELECT alert_id, alert_status FROM guard.claim_resolved_deliveries('res', 'w1', 2, 60)$$,
    $$VALUES (8302::bigint, 'resolved'::text), (8309, 'resolved')$$,
    'claim_resolved_deliveries: the two resolved earliest of the claimable ones'
);
SELECT results_eq(
    $$SELECT alert_id, resolved_sent_at IS NOT DISTINCT FROM delivered_at, resolved_sent_at IS NULL,
             claimed_by, claimed_until - now()
      FROM guard.alert_deliveries WHERE alert_id BETWEEN 8301 AND 8313 ORDER BY alert_id$$,
    $$VALUES
        (8301::bigint, TRUE, FALSE, NULL::text, NULL::interval),
        (8302, FALSE, TRUE, 'w1', interval '60 s'),
        (8303, FALSE, TRUE, NULL, NULL),
        (8304, FALSE, TRUE, NULL, NULL),
        (8305, TRUE, TRUE, NULL, NULL),
        (8306, TRUE, TRUE, NULL, NULL),
        (8307, FALSE, FALSE, NULL, NULL),
        (8308, FALSE, TRUE, NULL, NULL),
        (8309, FALSE, TRUE, 'w1', interval '60 s'),
        (8310, FALSE, TRUE, 'w2', interval '30 s'),
        (8311, FALSE, TRUE, 'w2', interval '0 s'),
        (8312, FALSE, TRUE, NULL, NULL),
        (8313, FALSE, FALSE, NULL, NULL)$$,
    'claim_resolved_deliveries: only the channel''s delivered row resolved by then is settled; '
    || 'the claims get the lease; every other row is left as it was'
);
SELECT results_eq(
    $$SELECT alert_id, resolved_sent_at FROM guard.alert_deliveries
      WHERE alert_id IN (8307, 8313) ORDER BY alert_id$$,
    $$VALUES (8307::bigint, now() - interval '5 s'), (8313, now() - interval '5 s')$$,
    'claim_resolved_deliveries: an announced row keeps when it was announced, resolved before '
    || 'its delivery or after'
);
SELECT results_eq(
    $$SELECT alert_id FROM guard.claim_resolved_deliveries('res', 'w3', 10, 60)$$,
    $$VALUES (8312::bigint)$$,
    'claim_resolved_deliveries: a second dispatcher gets what is left, not what is leased'
);

SELECT * FROM finish();
ROLLBACK;
