-- guard.reconcile's two booking-journal steps: a dry run counts a stale calling attempt and an
-- unknown attempt whose review is settled, and changes neither (no state, review item or
-- alert); an unknown attempt is settled when its call's booking_outcome_unknown item is closed,
-- whatever other item of the call is still open, and closing it names who closed that item, not
-- a later item of another reason on the same call nor one of another call.
BEGIN;
SELECT plan(9);

INSERT INTO companies (id, name) VALUES (1111, 'journal steps');
SELECT pgtap_setup.company_calls(1111, 11101, 11106, 'r');

-- 11101: still calling an hour after it began (a booking process that died mid-call).
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at)
VALUES (1111, 11101, 7, 'stale', now() - interval '1 hour');
-- 11102 and 11103: unknown, each call's booking_outcome_unknown item closed by a person; on
-- 11102 an item of another reason closed after it (a higher id, the same closing time) by
-- someone else.
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state, created_at)
VALUES
(1111, 11102, 7, 'settled-by-ann', 'unknown', now() - interval '2 hours'),
(1111, 11103, 7, 'settled-by-carl', 'unknown', now() - interval '2 hours'),
(1111, 11104, 7, 'settled-by-dana', 'unknown', now() - interval '2 hours');
-- A review item of the call queued for the reason, then closed by a person (its own update).
CREATE FUNCTION pg_temp.closed_item(
    call_id bigint, reason text, closed_as text, closed_by text, note text
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    item bigint;
BEGIN
    INSERT INTO guard.review_items (company_id, call_id, reason, details)
    VALUES (1111, closed_item.call_id, closed_item.reason, '{}')
    RETURNING id INTO item;
    UPDATE guard.review_items AS r
    SET status = closed_as, closed_by = closed_item.closed_by, note = closed_item.note
    WHERE r.id = item;
END;
$$;
SELECT pg_temp.closed_item(11102, 'booking_outcome_unknown', 'dismissed', 'ann', 'not booked');
SELECT pg_temp.closed_item(11102, 'calendar_booking_failure', 'resolved', 'bob', 'called back');
SELECT pg_temp.closed_item(11103, 'booking_outcome_unknown', 'resolved', 'carl', 'booked by hand');
-- 11104: its booking_outcome_unknown item closed, an item of another reason still open.
SELECT pg_temp.closed_item(11104, 'booking_outcome_unknown', 'resolved', 'dana', 'not booked');
INSERT INTO guard.review_items (company_id, call_id, reason, details)
VALUES (1111, 11104, 'calendar_booking_failure', '{}');
-- The open alerts reconcile raised when the two became unknown.
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity, message)
SELECT
    'booking_outcome_unknown:booking_attempt:' || b.id,
    'booking_outcome_unknown',
    1111,
    'booking_attempt',
    b.id,
    'critical',
    'a booking attempt never finished'
FROM guard.booking_attempts AS b
WHERE b.call_id IN (11102, 11103, 11104);

CREATE TEMPORARY TABLE journal_before AS
SELECT
    (SELECT string_agg(b.idempotency_key || '=' || b.state, ',' ORDER BY b.id) FROM guard.booking_attempts AS b) AS attempts,
    (SELECT count(*) FROM guard.review_items) AS review_items,
    (SELECT string_agg(a.fingerprint || '=' || a.status, ',' ORDER BY a.id) FROM guard.alerts AS a) AS alerts;

SELECT results_eq(
    $$SELECT * FROM pgtap_setup.reconciled('{booking_outcome_unknown,close_reviewed_attempt}', dry_run => TRUE)$$,
    $$VALUES ('booking_outcome_unknown', 1), ('close_reviewed_attempt', 3)$$,
    'a dry run counts the stale calling attempt and the three settled unknown ones'
);
SELECT is(
    (SELECT string_agg(b.idempotency_key || '=' || b.state, ',' ORDER BY b.id) FROM guard.booking_attempts AS b),
    (SELECT attempts FROM journal_before),
    'a dry run leaves every attempt in its state'
);
SELECT is(
    (SELECT count(*) FROM guard.review_items),
    (SELECT review_items FROM journal_before),
    'a dry run queues nothing for review'
);
SELECT is(
    (SELECT string_agg(a.fingerprint || '=' || a.status, ',' ORDER BY a.id) FROM guard.alerts AS a),
    (SELECT alerts FROM journal_before),
    'a dry run raises and resolves no alert'
);

SELECT results_eq(
    $$SELECT * FROM pgtap_setup.reconciled('{booking_outcome_unknown,close_reviewed_attempt}')$$,
    $$VALUES ('booking_outcome_unknown', 1), ('close_reviewed_attempt', 3)$$,
    'the run does what the dry run counted'
);
SELECT is(
    (
        SELECT state FROM guard.booking_attempts
        WHERE idempotency_key = 'stale'
    ),
    'unknown',
    'the stale calling attempt is unknown'
);
SELECT results_eq(
    $$SELECT idempotency_key, state, failure_reason FROM guard.booking_attempts
      WHERE call_id IN (11102, 11103, 11104) ORDER BY call_id$$,
    $$VALUES ('settled-by-ann', 'failed', 'settled in review by ann'),
             ('settled-by-carl', 'failed', 'settled in review by carl'),
             ('settled-by-dana', 'failed', 'settled in review by dana')$$,
    'each closed attempt names who closed its own call''s booking_outcome_unknown item'
);
SELECT results_eq(
    $$SELECT entity_id, status, resolution FROM guard.alerts
      WHERE check_id = 'booking_outcome_unknown' ORDER BY entity_id$$,
    $$SELECT b.id, v.status, v.resolution
      FROM guard.booking_attempts AS b
      CROSS JOIN LATERAL (
          SELECT
              CASE WHEN b.call_id = 11101 THEN 'open' ELSE 'resolved' END AS status,
              CASE WHEN b.call_id = 11101 THEN NULL ELSE 'manual' END AS resolution
      ) AS v
      ORDER BY b.id$$,
    'the closed attempts'' alerts are resolved by hand; the new unknown attempt''s alert is open'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.review_items
        WHERE call_id = 11101 AND reason = 'booking_outcome_unknown' AND status = 'open'
    ),
    1,
    'the new unknown attempt is queued for review'
);

SELECT * FROM finish();
ROLLBACK;
