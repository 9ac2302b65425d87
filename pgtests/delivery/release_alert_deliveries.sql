-- guard.release_deliveries (a dispatcher's graceful shutdown): the pending rows this
-- worker claimed are given back, due at once; another worker's claims, unclaimed rows and rows
-- no longer pending are left alone.
BEGIN;
SELECT plan(2);

INSERT INTO guard.alerts (id, fingerprint, check_id, entity_type, entity_id, severity, message)
OVERRIDING SYSTEM VALUE
SELECT
    g.n,
    'rel:' || g.n,
    'booked_without_appointment',
    'call',
    g.n AS entity_id,
    'high',
    'x'
FROM generate_series(6601, 6605) AS g (n);
INSERT INTO guard.deliveries (kind, subject, channel, status, claimed_by, claimed_until, delivered_at) VALUES
('alert', 6601, 'rel', 'pending', 'w1', now() + interval '30 s', NULL),
('alert', 6602, 'rel', 'pending', 'w1', now() + interval '30 s', NULL),
('alert', 6603, 'rel', 'pending', 'w2', now() + interval '30 s', NULL),
('alert', 6604, 'rel', 'pending', NULL, NULL, NULL),
('alert', 6605, 'rel', 'delivered', 'w1', now() + interval '30 s', now());

SELECT is(guard.release_deliveries('rel', 'w1'), 2, 'release_deliveries: the worker''s two pending claims');
SELECT results_eq(
    $$SELECT subject, claimed_by FROM guard.deliveries WHERE channel = 'rel' ORDER BY subject$$,
    $$VALUES (6601::bigint, NULL::text), (6602, NULL), (6603, 'w2'), (6604, NULL), (6605, 'w1')$$,
    'release_deliveries: another worker''s claim and a delivered row keep theirs'
);

SELECT * FROM finish();
ROLLBACK;
