-- The generated mutants that survived the seed-52 sample (results/mutation/history.md), each killed
-- here by the behaviour it changed: both sides of the activity monitors' windows, a foreign
-- table in schema guard handed to the owner, a delivery that is no longer pending left alone by
-- guard.settle_deliveries, a call's link details kept by an update that keeps its customer,
-- an unknown column named by guard.role_grant_refusal, and a claim that changes hands stamped
-- by guard.stamp_review_actor.
BEGIN;
SELECT plan(16);

INSERT INTO companies (id, name) VALUES (601, 'edges'), (602, 'below the minimum');

-- guard.activity_against_usual: a window is [starts, ends), starts = ends - 60 minutes. Each of
-- weeks 1 to 4: 5 calls exactly at the window's start (in) and one exactly at its end (out),
-- so usual is 5.00; this week one call exactly at the start (in), one a microsecond before
-- (out), one exactly now (the end: out).
UPDATE guard.settings SET value = '60'
WHERE key = 'monitor_window_minutes';
UPDATE guard.settings SET value = '5'
WHERE key = 'monitor_min_expected';
INSERT INTO calls (company_id, retell_call_id, created_at)
SELECT
    601,
    'w' || w || '-' || n,
    now() - make_interval(days => 7 * w) - interval '60 min'
FROM generate_series(1, 4) AS w
CROSS JOIN generate_series(1, 5) AS n;
INSERT INTO calls (company_id, retell_call_id, created_at)
SELECT
    601,
    'end' || w,
    now() - make_interval(days => 7 * w)
FROM generate_series(1, 4) AS w;
INSERT INTO calls (company_id, retell_call_id, created_at) VALUES
(601, 'now-start', now() - interval '60 min'),
(601, 'now-before', now() - interval '60 min' - interval '1 microsecond'),
(601, 'now-end', now());
-- Company 602: 19 calls over the four weeks, usual 4.75, just below monitor_min_expected.
INSERT INTO calls (company_id, retell_call_id, created_at)
SELECT
    602,
    'q' || n,
    now() - interval '7 days' - interval '30 min'
FROM generate_series(1, 19) AS n;
SELECT results_eq(
    $$SELECT company_id, recent, usual FROM guard.activity_against_usual('calls')
      WHERE company_id IN (601, 602)$$,
    $$VALUES (601::bigint, 1::bigint, 5.00::numeric)$$,
    'activity_against_usual(calls): a call exactly at a window''s start counts, one at its end '
    'or before its start does not; a usual of exactly monitor_min_expected is returned, 4.75 not'
);
INSERT INTO appointments (company_id, created_at)
SELECT
    601,
    now() - make_interval(days => 7 * w) - interval '60 min'
FROM generate_series(1, 4) AS w
CROSS JOIN generate_series(1, 5) AS n;
INSERT INTO appointments (company_id, created_at)
SELECT
    601,
    now() - make_interval(days => 7 * w)
FROM generate_series(1, 4) AS w;
INSERT INTO appointments (company_id, created_at) VALUES
(601, now() - interval '60 min'),
(601, now() - interval '60 min' - interval '1 microsecond'),
(601, now());
SELECT results_eq(
    $$SELECT company_id, recent, usual FROM guard.activity_against_usual('appointments')
      WHERE company_id IN (601, 602)$$,
    $$VALUES (601::bigint, 1::bigint, 5.00::numeric)$$,
    'activity_against_usual(appointments): the same window edges'
);

-- guard.apply_grants hands every relation kind of schema guard to the owner role, a foreign
-- table (an adopted database's) included.
DO $$
BEGIN
    CREATE FOREIGN DATA WRAPPER guard_test_fdw;
    CREATE SERVER guard_test_server FOREIGN DATA WRAPPER guard_test_fdw;
    CREATE FOREIGN TABLE guard.test_foreign (a integer) SERVER guard_test_server;
END;
$$;
SELECT guard.apply_grants();
SELECT is(
    (
        SELECT relowner::regrole::text FROM pg_class
        WHERE oid = 'guard.test_foreign'::regclass
    ),
    quote_ident(guard.role('owner')),
    'apply_grants: a foreign table in schema guard is handed to the owner role'
);

-- guard.settle_deliveries: only pending deliveries count a failure; one delivered or given
-- up is left as it is. max_attempts 3: a second failure stays pending, a third gives up.
INSERT INTO guard.alerts (id, fingerprint, check_id, company_id, entity_type, entity_id, severity, message)
OVERRIDING SYSTEM VALUE
VALUES
(60101, 'gen:1', 'booked_without_appointment', 601, 'call', 1, 'high', 'x'),
(60102, 'gen:2', 'booked_without_appointment', 601, 'call', 2, 'high', 'x'),
(60103, 'gen:3', 'booked_without_appointment', 601, 'call', 3, 'high', 'x'),
(60104, 'gen:4', 'booked_without_appointment', 601, 'call', 4, 'high', 'x');
INSERT INTO guard.deliveries (kind, subject, channel, status, attempts, delivered_at) VALUES
('alert', 60101, 'gen', 'pending', 1, NULL),
('alert', 60102, 'gen', 'pending', 2, NULL),
('alert', 60103, 'gen', 'delivered', 1, now() - interval '1 hour'),
('alert', 60104, 'gen', 'failed', 3, NULL);
SELECT is(
    guard.settle_deliveries('alert', 'gen', ARRAY[60101, 60102, 60103, 60104]::bigint[], 'boom', 1, 60, 3),
    1,
    'settle_deliveries: the delivery reaching max_attempts gives up (the one given up before '
    'is not counted again)'
);
SELECT results_eq(
    $$SELECT subject, status, attempts, last_error FROM guard.deliveries
      WHERE channel = 'gen' ORDER BY subject$$,
    $$VALUES (60101::bigint, 'pending', 2, 'boom'), (60102, 'failed', 3, 'boom'),
             (60103, 'delivered', 1, NULL), (60104, 'failed', 3, NULL)$$,
    'settle_deliveries: attempts + 1 below max_attempts stays pending, at it fails; a '
    'delivered or failed delivery is not touched'
);

-- guard.normalise_customer_link: an update that writes the caller's number (so the trigger
-- runs) but keeps the customer keeps the link details as they were.
INSERT INTO customers (id, company_id, name) VALUES (601, 601, 'Ann');
INSERT INTO calls (
    id, company_id, retell_call_id, from_number, customer_id, customer_linked_at,
    customer_link_method, customer_link_confidence
) OVERRIDING SYSTEM VALUE
VALUES (60101, 601, 'link', '+49 30 1', 601, '2026-01-02 03:04:05+00', 'name_match', 40);
UPDATE calls SET from_number = '+49 30 2'
WHERE id = 60101;
SELECT results_eq(
    $$SELECT customer_link_status, customer_linked_at, customer_link_method,
             customer_link_confidence
      FROM calls WHERE id = 60101$$,
    $$VALUES ('linked', '2026-01-02 03:04:05+00'::timestamptz, 'name_match',
              40.00::numeric(5, 2))$$,
    'normalise_customer_link: an update that keeps the customer keeps linked_at, method and '
    'confidence'
);
UPDATE calls SET customer_id = 601
WHERE id = 60101;
SELECT is(
    (
        SELECT customer_linked_at FROM calls
        WHERE id = 60101
    ),
    '2026-01-02 03:04:05+00'::timestamptz,
    'normalise_customer_link: writing the same customer again is no new link'
);
INSERT INTO customers (id, company_id, name) VALUES (602, 601, 'Bob');
UPDATE calls SET customer_id = 602
WHERE id = 60101;
SELECT results_eq(
    $$SELECT customer_linked_at = now(), customer_link_method, customer_link_confidence
      FROM calls WHERE id = 60101$$,
    $$VALUES (TRUE, 'phone_match', 100.00::numeric(5, 2))$$,
    'normalise_customer_link: another customer does not inherit the previous link''s details'
);

-- guard.role_grant_refusal: a column the table does not have is named; the ones it has pass.
SELECT is(
    guard.role_grant_refusal('reporting', 'TABLE', 'public.calls', ARRAY['SELECT'], ARRAY['id', 'no_such_column']),
    'public.calls has no column no_such_column',
    'role_grant_refusal: an unknown column among known ones is refused, by name'
);
SELECT is(
    guard.role_grant_refusal('reporting', 'TABLE', 'public.calls', ARRAY['SELECT'], ARRAY['id', 'company_id']),
    NULL,
    'role_grant_refusal: columns the table has pass'
);

-- guard.stamp_review_actor: claimed_by_role is the login behind the latest claim. An item
-- claimed by an earlier login (written with the triggers off, as by another session).
INSERT INTO guard.review_items (company_id, reason) VALUES (601, 'other');
SET LOCAL session_replication_role = replica;
UPDATE guard.review_items SET status = 'claimed', claimed_by = 'ann', claimed_at = now(), claimed_by_role = 'earlier_login'
WHERE company_id = 601;
SET LOCAL session_replication_role = origin;
UPDATE guard.review_items SET note = NULL
WHERE company_id = 601;
SELECT is(
    (
        SELECT claimed_by_role FROM guard.review_items
        WHERE company_id = 601
    ),
    'earlier_login',
    'stamp_review_actor: an update that leaves the claim alone keeps claimed_by_role'
);
UPDATE guard.review_items SET claimed_by = 'bob'
WHERE company_id = 601;
SELECT is(
    (
        SELECT claimed_by_role FROM guard.review_items
        WHERE company_id = 601
    ),
    session_user::text,
    'stamp_review_actor: a claim that changes hands while claimed is stamped with the login'
);
SELECT is(
    (
        SELECT closed_by_role FROM guard.review_items
        WHERE company_id = 601
    ),
    NULL,
    'stamp_review_actor: an item not closed has no closed_by_role'
);
UPDATE guard.review_items SET status = 'resolved', closed_by = 'bob', note = 'done'
WHERE company_id = 601;
SELECT results_eq(
    $$SELECT claimed_by_role = session_user, closed_by_role = session_user, closed_at = now()
      FROM guard.review_items WHERE company_id = 601$$,
    $$VALUES (TRUE, TRUE, TRUE)$$,
    'stamp_review_actor: closing stamps closed_by_role and keeps claimed_by_role'
);
-- Open -> claimed by the trigger path: the claim is stamped.
INSERT INTO guard.review_items (company_id, reason) VALUES (602, 'other');
UPDATE guard.review_items SET status = 'claimed', claimed_by = 'carol'
WHERE company_id = 602;
SELECT results_eq(
    $$SELECT claimed_by_role = session_user, claimed_at = now() FROM guard.review_items
      WHERE company_id = 602$$,
    $$VALUES (TRUE, TRUE)$$,
    'stamp_review_actor: claiming an open item stamps the login'
);
-- Inserted already claimed: stamped at insert; inserted open: nothing.
INSERT INTO guard.review_items (company_id, reason, status, claimed_by, claimed_at)
VALUES (602, 'validation_failure', 'claimed', 'dan', now());
SELECT results_eq(
    $$SELECT reason, claimed_by_role = session_user, closed_by_role IS NULL
      FROM guard.review_items WHERE company_id = 602 ORDER BY id$$,
    $$VALUES ('other', TRUE, TRUE), ('validation_failure', TRUE, TRUE)$$,
    'stamp_review_actor: an item inserted claimed is stamped at insert'
);

SELECT * FROM finish();
ROLLBACK;
