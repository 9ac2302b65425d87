-- The edges of two claims:
-- - guard.claim_deliveries with digest_hours: an alert opened exactly at the start of the
--   current digest period waits for the next digest, one opened a microsecond before is sent; a delivery due exactly
--   now is due, one due a minute from now is not; a lease ending exactly now still runs;
-- - guard.review_notice_items: an item's details as a dispatcher gets them: scalar values only
--   (strings cut to 200 characters; numbers, booleans and nulls as they are), keys of at most 64
--   characters; an item deleted since it was queued comes with its id only. (The lease edge of
--   the notices' claim: pgtests/delivery/claim_deliveries.sql.)
BEGIN;
SELECT plan(3);

CREATE TEMPORARY TABLE period AS
SELECT to_timestamp(floor(extract(EPOCH FROM now()) / 86400) * 86400) AS ends;

INSERT INTO guard.alerts (id, fingerprint, check_id, entity_type, severity, message, first_seen_at, last_seen_at)
OVERRIDING SYSTEM VALUE
SELECT
    a.id,
    'digest:' || a.id,
    'pgtap',
    'job',
    'high',
    'x',
    a.first_seen_at,
    a.first_seen_at AS last_seen_at
FROM (
    SELECT
        8701 AS id,
        p.ends - interval '1 microsecond' AS first_seen_at
    FROM period AS p
    UNION ALL
    SELECT
        8702,
        p.ends
    FROM period AS p
    UNION ALL
    SELECT
        g,
        p.ends - interval '1 hour'
    FROM period AS p CROSS JOIN generate_series(8703, 8706) AS g
) AS a;
INSERT INTO guard.deliveries (kind, subject, channel, next_attempt_at, claimed_by, claimed_until) VALUES
('alert', 8701, 'dig', now() - interval '1 hour', NULL, NULL),
('alert', 8702, 'dig', now() - interval '1 hour', NULL, NULL),
('alert', 8703, 'dig', now() + interval '1 minute', NULL, NULL),
('alert', 8704, 'dig', now(), NULL, NULL),
('alert', 8705, 'dig', now() - interval '1 hour', 'w1', now()),
('alert', 8706, 'dig', now() - interval '1 hour', 'w1', now() - interval '1 microsecond');

SELECT results_eq(
    $$SELECT subject FROM guard.claim_deliveries('alert', 'dig', 'w2', 10, 60, 24) ORDER BY 1$$,
    $$VALUES (8701::bigint), (8704), (8706)$$,
    'claim_deliveries (digest): opened before the period, due by now, no running lease'
);

INSERT INTO companies (id, name) VALUES (871, 'A');
INSERT INTO guard.review_items (id, company_id, reason, details)
OVERRIDING SYSTEM VALUE
VALUES
(
    8711, 871, 'other',
    jsonb_build_object(
        's', repeat('x', 300), 'n', 5, 'b', TRUE, 'z', NULL, 'o', '{"a": 1}'::jsonb,
        'arr', '[1]'::jsonb, repeat('k', 64), 2, repeat('k', 65), 3
    )
);

CREATE TEMPORARY TABLE claimed_notices AS
SELECT * FROM guard.review_notice_items(ARRAY[8711, 8719]::bigint[]);

SELECT results_eq(
    $$SELECT review_item_id, reason FROM claimed_notices$$,
    $$VALUES (8711::bigint, 'other'), (8719, NULL)$$,
    'review_notice_items: one row per item named, a deleted one with its id only'
);
SELECT is(
    (
        SELECT details FROM claimed_notices
        WHERE review_item_id = 8711
    ),
    jsonb_build_object('s', repeat('x', 200), 'n', 5, 'b', TRUE, 'z', NULL, repeat('k', 64), 2),
    'review_notice_items: scalar details only, strings cut to 200, keys of at most 64 characters'
);

SELECT * FROM finish();
ROLLBACK;
