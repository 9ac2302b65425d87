-- guard.skip_alert_deliveries_below (`guard watch --min-severity`) at its edges: a delivery whose
-- lease ends exactly now, or later, is a dispatcher's and left alone; an alert gets delivered_at
-- when nothing of it is outstanding on any channel, and only then; an alert that had one keeps
-- it; alerts it did not skip are not touched, whatever their deliveries.
BEGIN;
SELECT plan(4);

INSERT INTO guard.alerts (id, fingerprint, check_id, entity_type, severity, message, delivered_at)
OVERRIDING SYSTEM VALUE
SELECT
    g.id,
    'skip-edge:' || g.id,
    'skip_edge',
    'job',
    'low',
    'x',
    CASE WHEN g.id = 9305 THEN now() - interval '1 day' END
FROM generate_series(9301, 9306) AS g (id);
INSERT INTO guard.deliveries (kind, subject, channel, status, claimed_by, claimed_until, delivered_at)
VALUES
-- 9301: claimed by a dispatcher whose lease ends exactly now; 9302: a lease of 5 more minutes
('alert', 9301, 'ops', 'pending', 'dispatcher-1', now(), NULL),
('alert', 9302, 'ops', 'pending', 'dispatcher-1', now() + interval '5 min', NULL),
-- 9303: still pending by mail; 9304: delivered by mail already
('alert', 9303, 'ops', 'pending', NULL, NULL, NULL),
('alert', 9303, 'mail', 'pending', NULL, NULL, NULL),
('alert', 9304, 'ops', 'pending', NULL, NULL, NULL),
('alert', 9304, 'mail', 'delivered', NULL, NULL, now() - interval '1 hour'),
-- 9305: delivered everywhere a day ago, then given a delivery on a new channel
('alert', 9305, 'ops', 'pending', NULL, NULL, NULL);
-- 9306: no delivery at all (no channel was configured when it opened)

SELECT is(
    guard.skip_alert_deliveries_below('ops', 'medium', 'edge-test'),
    3,
    'skip_alert_deliveries_below: the three free pending deliveries below medium are skipped'
);
SELECT results_eq(
    $$SELECT subject, status FROM guard.deliveries WHERE channel = 'ops' ORDER BY subject$$,
    $$VALUES (9301::bigint, 'pending'), (9302, 'pending'), (9303, 'skipped'), (9304, 'skipped'),
             (9305, 'skipped')$$,
    'skip_alert_deliveries_below: a lease ending exactly now or later is left alone'
);
SELECT results_eq(
    $$SELECT id, delivered_at IS NULL, delivered_at = now(), delivered_at < now()
      FROM guard.alerts WHERE check_id = 'skip_edge' ORDER BY id$$,
    $$VALUES
        (9301::bigint, TRUE, NULL::boolean, NULL::boolean),
        (9302, TRUE, NULL, NULL),
        (9303, TRUE, NULL, NULL),
        (9304, FALSE, TRUE, FALSE),
        (9305, FALSE, FALSE, TRUE),
        (9306, TRUE, NULL, NULL)$$,
    'skip_alert_deliveries_below: delivered_at set where nothing is outstanding (9304), kept '
    'where it was set (9305), not set where mail is pending (9303) or for alerts it did not skip'
);
SELECT results_eq(
    $$SELECT channels, deliveries, below_severity FROM guard.delivery_skips
      WHERE skipped_by = 'edge-test'$$,
    $$VALUES (ARRAY['ops'], 3, 'medium')$$,
    'skip_alert_deliveries_below: the skip is recorded with its channel, count and minimum'
);

SELECT * FROM finish();
ROLLBACK;
