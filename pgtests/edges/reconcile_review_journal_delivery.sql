-- Reconcile, the review queue, the booking journal and alert delivery at the edges their other
-- fixtures never reach: ambiguous candidates, a field next to the one set, items a reviewer holds,
-- thresholds at their exact boundary (now() is fixed inside this transaction), the session
-- settings that mean "none".
BEGIN;
SELECT plan(32);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
ALTER TABLE calls ALTER COLUMN id RESTART WITH 10000;
ALTER TABLE appointments ALTER COLUMN id RESTART WITH 10000;

-- Reconcile. Written as a legacy load would (triggers off): 201 and 202 carry the same booking
-- uid as the orphan appointment 201 (two candidates: a person decides); 203 is a phantom booking
-- whose application already said why it failed.
SET LOCAL session_replication_role = replica;
INSERT INTO calls (
    id, company_id, retell_call_id, direction, customer_link_status, session_outcome,
    appointment_made, appointment_link_status, booking_id, booking_failed, booking_failure_reason,
    created_at, updated_at
) VALUES
(201, 1, 'c201', 'inbound', 'unlinked', 'information_only', FALSE, NULL, 'bk-two', FALSE, NULL, now() - interval '20 min', now() - interval '20 min'),
(202, 1, 'c202', 'inbound', 'unlinked', 'information_only', FALSE, NULL, 'bk-two', FALSE, NULL, now() - interval '20 min', now() - interval '20 min'),
(203, 1, 'c203', 'inbound', 'unlinked', 'appointment_booked', TRUE, 'linked', 'bk203', FALSE, 'calendar said no', now() - interval '20 min', now() - interval '20 min');
INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id, created_at)
VALUES (201, 1, NULL, 'retell_webhook', 'bk-two', now() - interval '20 min');
-- 205 and 206 (another company) carry the uid of orphan 206: not reconcile's to decide.
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status, booking_id, created_at, updated_at) VALUES
(205, 1, 'c205', 'inbound', 'unlinked', 'bk-shared', now() - interval '20 min', now() - interval '20 min'),
(206, 2, 'c206', 'inbound', 'unlinked', 'bk-shared', now() - interval '20 min', now() - interval '20 min');
INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id, created_at)
VALUES (206, 1, NULL, 'retell_webhook', 'bk-shared', now() - interval '20 min');
SET LOCAL session_replication_role = origin;

-- An attempt still calling an hour after it started: the first pass marks it unknown and queues it.
INSERT INTO calls (id, company_id, retell_call_id, direction) VALUES (204, 1, 'c204', 'inbound');
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at)
VALUES (1, 204, 7, 'stale', now() - interval '1 hour');
-- A second one, whose booking turns out to exist (completed below).
INSERT INTO calls (id, company_id, retell_call_id, direction) VALUES (208, 1, 'c208', 'inbound');
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at)
VALUES (1, 208, 7, 'stale2', now() - interval '50 min');
-- One calling for exactly the timeout (120 s): not yet unknown.
INSERT INTO calls (id, company_id, retell_call_id, direction) VALUES (207, 1, 'c207', 'inbound');
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at)
VALUES (1, 207, 7, 'exactly-timeout', now() - interval '120 s');

SELECT * FROM guard.reconcile();
SELECT is(
    (
        SELECT call_id FROM appointments
        WHERE id = 201
    ), NULL,
    'reconcile: an orphan with two candidate calls of its company is not linked to either'
);
SELECT is(
    (
        SELECT call_id FROM appointments
        WHERE id = 206
    ), NULL,
    'reconcile: an orphan whose uid is also on another company''s call is not linked'
);
SELECT results_eq(
    $$SELECT b.idempotency_key, b.state FROM guard.booking_attempts AS b
      WHERE b.idempotency_key IN ('stale', 'exactly-timeout') ORDER BY 1$$,
    $$VALUES ('exactly-timeout', 'calling'), ('stale', 'unknown')$$,
    'reconcile: past the timeout an attempt is unknown, at exactly the timeout still calling'
);
SELECT results_eq(
    $$SELECT b.idempotency_key FROM guard.check_booking_outcome_unknown AS v
      INNER JOIN guard.booking_attempts AS b ON v.entity_id = b.id$$,
    ARRAY['stale', 'stale2'],
    'booking_outcome_unknown: detection reports the attempts reconcile marked unknown'
);
SELECT results_eq(
    'SELECT booking_failure_reason, requires_manual_processing FROM calls WHERE id = 203',
    $$VALUES ('calendar said no', TRUE)$$,
    'reconcile: a rolled-back phantom booking keeps the failure reason the application gave'
);
SELECT results_eq(
    $$SELECT reason FROM guard.review_items WHERE call_id = 203$$,
    ARRAY['calendar_booking_failure'],
    'reconcile: a rolled-back phantom booking is queued as a calendar booking failure'
);

-- A reviewer claims the unknown attempt's item: the next pass must leave the attempt alone.
SELECT is(
    (SELECT call_id FROM guard.review_claim('reviewer-a')), 204::bigint,
    'the unknown attempt''s item is the most urgent one'
);
SELECT * FROM guard.reconcile();
SELECT is(
    (
        SELECT state FROM guard.booking_attempts
        WHERE idempotency_key = 'stale'
    ), 'unknown',
    'reconcile: an unknown attempt whose item a reviewer has claimed is not closed under them'
);
SELECT is(
    guard.enqueue_review(1, 204, NULL, 'booking_outcome_unknown'),
    (
        SELECT id FROM guard.review_items
        WHERE call_id = 204 AND reason = 'booking_outcome_unknown'
    ),
    'enqueue_review: a duplicate of a claimed item returns that item'
);

-- Settling an unknown attempt as failed: the attempt is failed, its item resolved, the call's
-- unrelated item left open.
SELECT guard.enqueue_review(1, 204, NULL, 'customer_creation_failure');
SELECT guard.fail_booking_attempt('stale', 'calendar_booking_failure');
SELECT is(
    (
        SELECT state FROM guard.booking_attempts
        WHERE idempotency_key = 'stale'
    ), 'failed',
    'fail_booking_attempt: an unknown attempt is settled as failed'
);
SELECT results_eq(
    $$SELECT reason, status FROM guard.review_items
      WHERE call_id = 204 AND reason IN ('booking_outcome_unknown', 'customer_creation_failure')
      ORDER BY reason$$,
    $$VALUES ('booking_outcome_unknown', 'resolved'), ('customer_creation_failure', 'open')$$,
    'settling closes the attempt''s own item, not the call''s others'
);

SELECT throws_ok(
    $$SELECT guard.complete_booking_attempt('stale', 1, 'bk-none')$$,
    '55000', NULL, 'complete_booking_attempt: a failed attempt cannot be completed later'
);
-- The calendar did book the second one: completing it settles its item and its alert.
INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id)
VALUES (208, 1, 208, 'retell_webhook', 'bk208');
SELECT throws_ok(
    $$SELECT guard.complete_booking_attempt('stale2', 208, 'bk-another')$$,
    '23503', NULL, 'complete_booking_attempt: the booking uid must be the appointment''s'
);
SELECT is(
    guard.complete_booking_attempt('stale2', 208, 'bk208'), 'recovered',
    'complete_booking_attempt: an unknown attempt whose booking exists is recovered'
);
SELECT results_eq(
    $$SELECT
          (SELECT status FROM guard.review_items WHERE call_id = 208 AND reason = 'booking_outcome_unknown'),
          (SELECT a.status FROM guard.alerts AS a INNER JOIN guard.booking_attempts AS b
              ON a.fingerprint = 'booking_outcome_unknown:booking_attempt:' || b.id
           WHERE b.idempotency_key = 'stale2')$$,
    $$VALUES ('resolved', 'resolved')$$,
    'completing an unknown attempt resolves its review item and its alert'
);

-- Review queue: the most urgent reason first, however old the rest.
INSERT INTO calls (id, company_id, retell_call_id, direction) VALUES
(210, 1, 'c210', 'inbound'), (211, 1, 'c211', 'inbound'), (212, 1, 'c212', 'inbound');
INSERT INTO guard.review_items (company_id, call_id, reason, created_at)
VALUES (1, 210, 'other', now() - interval '2 days');
SELECT guard.enqueue_review(1, 211, NULL, 'validation_failure');
SELECT is(
    (SELECT call_id FROM guard.review_claim('reviewer-b')), 211::bigint,
    'review_claim: a validation failure before an older item of lower priority'
);
-- The sweep resolves open items whose problem is gone, never one a reviewer holds.
INSERT INTO appointments (company_id, call_id, source, calcom_v2_booking_id) VALUES (1, 211, 'retell_webhook', 'bk211');
SELECT guard.enqueue_review(1, 212, NULL, 'validation_failure');
-- 214's only appointment is cancelled: its problem is not gone.
INSERT INTO calls (id, company_id, retell_call_id, direction) VALUES (214, 1, 'c214', 'inbound');
SELECT guard.enqueue_review(1, 214, NULL, 'validation_failure');
INSERT INTO appointments (company_id, call_id, source, calcom_v2_booking_id, status)
VALUES (1, 214, 'retell_webhook', 'bk214', 'cancelled');
INSERT INTO appointments (company_id, call_id, source, calcom_v2_booking_id) VALUES (1, 212, 'retell_webhook', 'bk212');
SELECT is(guard.review_sweep(), 1, 'review_sweep: one open item whose appointment now exists');
SELECT results_eq(
    'SELECT call_id, status FROM guard.review_items WHERE call_id IN (211, 212, 214) ORDER BY call_id',
    $$VALUES (211::bigint, 'claimed'), (212::bigint, 'resolved'), (214::bigint, 'open')$$,
    'review_sweep: the claimed item stays with its reviewer; a cancelled appointment solves nothing'
);
-- An item about an appointment that has been cancelled since is swept.
INSERT INTO appointments (id, company_id, call_id, source, status) VALUES (213, 2, NULL, 'manual', 'scheduled');
SELECT guard.enqueue_review(2, NULL, 213, 'other');
UPDATE appointments SET status = 'cancelled'
WHERE id = 213;
SELECT is(guard.review_sweep(), 1, 'review_sweep: an item whose appointment was cancelled');

-- Booking journal boundaries (timeout 120 s, validation_recent_seconds 300 s).
INSERT INTO calls (id, company_id, retell_call_id, direction) VALUES
(220, 1, 'c220', 'inbound'), (221, 1, 'c221', 'inbound'), (222, 1, 'c222', 'inbound'),
(223, 1, 'c223', 'inbound');
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at) VALUES
(1, 220, 7, 'at-timeout-begin', now() - interval '120 s'),
(1, 221, 7, 'at-timeout-complete', now() - interval '120 s');
SELECT is(
    (SELECT outcome FROM guard.begin_booking_attempt(220, 7)), 'in_flight',
    'begin_booking_attempt: an attempt calling for exactly the timeout is still in flight'
);
INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id, created_at)
VALUES (221, 1, 221, 'retell_webhook', 'bk221', now() - interval '300 s');
SELECT is(
    guard.complete_booking_attempt('at-timeout-complete', 221, 'bk221'), 'booked',
    'complete_booking_attempt: completed at exactly the timeout is booked, not recovered'
);
SELECT is(
    (SELECT ok FROM guard.validate_booking(221, 221, 'bk221')), TRUE,
    'validate_booking: an appointment exactly validation_recent_seconds old is still recent'
);
-- The same call marked failed by a writer that bypassed the triggers: not a valid booking.
SET LOCAL session_replication_role = replica;
UPDATE calls SET booking_failed = TRUE
WHERE id = 221;
SET LOCAL session_replication_role = origin;
SELECT results_eq(
    $$SELECT ok, reason FROM guard.validate_booking(221, 221, 'bk221')$$,
    $$VALUES (FALSE, 'call_flags_disagree')$$,
    'validate_booking: a call still marked failed does not validate'
);
-- A call whose only appointment was cancelled may book again.
INSERT INTO appointments (company_id, call_id, source, calcom_v2_booking_id, status)
VALUES (1, 222, 'retell_webhook', 'bk222', 'cancelled');
SELECT is(
    (SELECT outcome FROM guard.begin_booking_attempt(222, 7)), 'started',
    'begin_booking_attempt: a cancelled appointment does not count as booked'
);

-- Alert delivery: a delivery due exactly now is handed out now (every delivery of the channel,
-- the alerts reconcile raised above included, is made due exactly now).
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details)
VALUES ('edge:1', 'booked_without_appointment', 1, 'call', 223, 'high', 'x', '{}');
SELECT guard.enqueue_alert_deliveries(ARRAY['edge']);
UPDATE guard.deliveries SET next_attempt_at = now()
WHERE channel = 'edge';
SELECT is(
    (SELECT count(*)::integer FROM guard.claim_deliveries('alert', 'edge', 'w', 100, 30)),
    (
        SELECT count(*)::integer FROM guard.deliveries
        WHERE channel = 'edge'
    ),
    'claim_deliveries: due exactly now is due'
);

-- Session settings that mean "no company selected", and superusers are bound to nothing.
SELECT set_config('booking_guard.company_id', '', TRUE);
SELECT is(guard.current_company(), NULL, 'an empty company selection selects none');
-- A binding exists (superusers hold USAGE of every role, so only the superuser exclusion keeps
-- it from confining this session).
CREATE ROLE guard_edge_bound NOLOGIN;
SELECT guard.tenant_grant('guard_edge_bound', 1);
SELECT is(guard.login_companies(), NULL, 'a superuser session is confined to no companies');

-- Whose default is the session's own: the login's in this database, the login's, then the
-- database's, as PostgreSQL applies them at connection start. Another login's default and this
-- login's default in another database are values this session set itself: ignored, so the
-- login's own default (here none, later 5) applies.
CREATE ROLE guard_edge_other NOLOGIN;
-- (through EXECUTE: sqlfluff does not parse ALTER ROLE ... SET of a custom setting)
DO $$ BEGIN EXECUTE 'ALTER ROLE guard_edge_other SET booking_guard.company_id = ''2'''; END $$;
SELECT set_config('booking_guard.company_id', '2', TRUE);
SELECT is(
    guard.current_company(), NULL,
    'another login''s default is not this session''s: ignored'
);
DO $$
BEGIN
    EXECUTE 'ALTER ROLE SESSION_USER IN DATABASE template1 SET booking_guard.company_id = ''3''';
END;
$$;
SELECT set_config('booking_guard.company_id', '3', TRUE);
SELECT is(
    guard.current_company(), NULL,
    'this login''s default in another database is not this session''s: ignored'
);
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET booking_guard.company_id = %L', current_database(), '6');
END;
$$;
SELECT set_config('booking_guard.company_id', '6', TRUE);
SELECT is(guard.current_company(), 6::bigint, 'the database''s default is every login''s own');
DO $$ BEGIN EXECUTE 'ALTER ROLE SESSION_USER SET booking_guard.company_id = ''5'''; END $$;
SELECT set_config('booking_guard.company_id', '6', TRUE);
SELECT is(
    guard.current_company(), 5::bigint,
    'the database''s default does not count where the login has its own: the login''s applies'
);
SELECT set_config('booking_guard.company_id', '5', TRUE);
SELECT is(guard.current_company(), 5::bigint, 'the login''s own default wins over the database''s');

SELECT * FROM finish();
ROLLBACK;
