-- guard.claim_deliveries is the one claim of alert deliveries, sent one message each
-- (digest_hours NULL) or in a digest (digest_hours 24): the same rules both ways, checked for
-- each. A claim holds its rows for the lease (a second dispatcher gets none of them), a lease
-- ended frees them for anyone, a row not due yet (next_attempt_at, after a failed send) waits;
-- period_end is the digest's period, NULL one message each.
BEGIN;
SELECT plan(10);
INSERT INTO guard.alerts (
    id, fingerprint, check_id, company_id, entity_type, entity_id, severity, message, first_seen_at,
    last_seen_at
) OVERRIDING SYSTEM VALUE
SELECT
    g,
    'both:' || g,
    'booked_without_appointment',
    1,
    'call',
    g AS entity_id,
    'high',
    'm',
    now() - interval '2 days',
    now()
FROM generate_series(9801, 9803) AS g;
SELECT is(
    (guard.enqueue_alert_deliveries(ARRAY['single', 'daily'])).added, 6, 'six deliveries queued'
);
UPDATE guard.deliveries SET next_attempt_at = now() + interval '1 minute'
WHERE subject = 9803;

CREATE TEMP TABLE way (channel text, hours integer);
INSERT INTO way VALUES ('single', NULL), ('daily', 24);

SELECT is(
    (
        SELECT array_agg(w.channel || ':' || c.subject ORDER BY w.channel, c.subject)
        FROM way AS w CROSS JOIN LATERAL guard.claim_deliveries('alert', w.channel, 'w1', 10, 60, w.hours) AS c
    ),
    ARRAY['daily:9801', 'daily:9802', 'single:9801', 'single:9802'],
    'both ways: the due rows are claimed, the one not due yet waits'
);
SELECT is(
    (
        SELECT count(*)::integer
        FROM way AS w CROSS JOIN LATERAL guard.claim_deliveries('alert', w.channel, 'w2', 10, 60, w.hours)
    ),
    0,
    'both ways: a second dispatcher gets nothing while the lease lasts'
);
UPDATE guard.deliveries SET claimed_until = now() - interval '1 second'
WHERE claimed_by = 'w1';
SELECT is(
    (
        SELECT array_agg(w.channel || ':' || c.subject ORDER BY w.channel, c.subject)
        FROM way AS w CROSS JOIN LATERAL guard.claim_deliveries('alert', w.channel, 'w2', 10, 60, w.hours) AS c
    ),
    ARRAY['daily:9801', 'daily:9802', 'single:9801', 'single:9802'],
    'both ways: a lease ended frees the rows for another dispatcher'
);
SELECT is(
    (
        SELECT array_agg(DISTINCT d.claimed_by) FROM guard.deliveries AS d
        WHERE d.subject < 9803
    ),
    ARRAY['w2'],
    'both ways: the rows are the new dispatcher''s'
);
UPDATE guard.deliveries SET claimed_by = NULL, claimed_until = NULL;
SELECT is(
    (
        SELECT count(*)::integer FROM guard.claim_deliveries('alert', 'single', 'w3', 10, 60) AS c
        WHERE c.period_end IS NULL
    ),
    2,
    'one message each: no period'
);
SELECT is(
    (
        SELECT array_agg(DISTINCT c.period_end)
        FROM guard.claim_deliveries('alert', 'daily', 'w3', 10, 60, 24) AS c
    ),
    ARRAY[to_timestamp(floor(extract(EPOCH FROM now()) / 86400) * 86400)],
    'a digest: its period ends at the last midnight UTC'
);
SELECT is(
    (
        SELECT attempts FROM guard.deliveries
        WHERE subject = 9801 AND channel = 'daily'
    ),
    0,
    'a claim counts no attempt'
);
SELECT is(
    (
        SELECT count(*)::integer FROM guard.alerts_for_delivery(ARRAY[9801, 9802, 1]::bigint[]) AS l
        WHERE l.check_id IS NULL
    ),
    1,
    'the loader: an alert that no longer exists comes back with its id only'
);
SELECT is(
    (SELECT array_agg(l.alert_id) FROM guard.alerts_for_delivery(ARRAY[9802, 9801]::bigint[]) AS l),
    ARRAY[9801, 9802]::bigint[],
    'the loader: oldest alert first'
);
SELECT * FROM finish();
ROLLBACK;
