-- guard.skip_alert_deliveries (`guard watch --skip-before`): an operator marks skipped the
-- deliveries, on the given channels, of alerts last seen before a time. An alert then skipped or
-- delivered on every channel is done (delivered_at); one still pending on another channel is
-- not, and neither is an alert seen again since. One alert's pending delivery never keeps
-- another alert from being done.
BEGIN;
SELECT plan(5);

INSERT INTO guard.alerts (
    fingerprint, check_id, entity_type, severity, message, first_seen_at, last_seen_at
) VALUES
('pgtap:old-both', 'pgtap', 'job', 'high', 'x', now() - '2 days'::interval, now() - '2 days'::interval),
('pgtap:old-email-only', 'pgtap', 'job', 'high', 'x', now() - '2 days'::interval, now() - '2 days'::interval),
('pgtap:recent', 'pgtap', 'job', 'high', 'x', now() - '2 days'::interval, now());
CREATE FUNCTION pg_temp.alert(fp text) RETURNS bigint
LANGUAGE sql AS $$ SELECT id FROM guard.alerts WHERE fingerprint = fp $$;

INSERT INTO guard.deliveries (kind, subject, channel, status, delivered_at)
VALUES
('alert', pg_temp.alert('pgtap:old-both'), 'email', 'pending', NULL),
('alert', pg_temp.alert('pgtap:old-both'), 'webhook', 'delivered', now() - interval '1 day'),
('alert', pg_temp.alert('pgtap:old-email-only'), 'email', 'pending', NULL),
('alert', pg_temp.alert('pgtap:old-email-only'), 'sms', 'pending', NULL),
('alert', pg_temp.alert('pgtap:recent'), 'email', 'pending', NULL);

SELECT is(
    guard.skip_alert_deliveries(now() - interval '1 day', '{email}', 'pgtap'),
    2,
    'the two old alerts'' pending email deliveries are skipped'
);
SELECT results_eq(
    $$SELECT a.fingerprint, d.channel, d.status FROM guard.deliveries AS d
      INNER JOIN guard.alerts AS a ON d.subject = a.id ORDER BY 1, 2$$,
    $$VALUES ('pgtap:old-both'::text, 'email'::text, 'skipped'::text),
             ('pgtap:old-both', 'webhook', 'delivered'),
             ('pgtap:old-email-only', 'email', 'skipped'),
             ('pgtap:old-email-only', 'sms', 'pending'),
             ('pgtap:recent', 'email', 'pending')$$,
    'other channels and the alert seen since keep their state'
);
SELECT results_eq(
    $$SELECT fingerprint, delivered_at IS NOT NULL FROM guard.alerts
      WHERE fingerprint LIKE 'pgtap:%' ORDER BY 1$$,
    $$VALUES ('pgtap:old-both'::text, TRUE), ('pgtap:old-email-only', FALSE),
             ('pgtap:recent', FALSE)$$,
    'done: the alert with nothing left to send, though another alert is still pending'
);
SELECT results_eq(
    $$SELECT skipped_by, channels, deliveries FROM guard.delivery_skips$$,
    $$VALUES ('pgtap'::text, '{email}'::text[], 2)$$,
    'the skip is recorded'
);

-- the other channel skipped too: the second alert is done as well
SELECT guard.skip_alert_deliveries(now() - interval '1 day', '{sms}', 'pgtap');
SELECT results_eq(
    $$SELECT fingerprint FROM guard.alerts
      WHERE fingerprint LIKE 'pgtap:%' AND delivered_at IS NOT NULL ORDER BY 1$$,
    $$VALUES ('pgtap:old-both'::text), ('pgtap:old-email-only')$$,
    'skipped on its last pending channel, the second old alert is done'
);

SELECT * FROM finish();
ROLLBACK;
