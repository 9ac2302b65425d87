-- The booking journal (guard.booking_attempts), every state transition from every state: what
-- begin, complete, fail and reconcile move an attempt to, what they refuse, and the rows written
-- directly (an adopted database, a superuser, triggers off) that the table's CHECKs and its
-- unique index refuse. States: calling -> booked | recovered | failed | queued | unknown;
-- unknown -> recovered | failed | queued; booked, recovered, failed and queued are final.
BEGIN;
SELECT plan(49);

INSERT INTO companies (id, name) VALUES (681, 'journal');
SELECT pgtap_setup.company_calls(681, 6801, 6840, 'j');

-- What begin answers for a call.
CREATE FUNCTION pg_temp.begin_outcome(call_id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT b.outcome FROM guard.begin_booking_attempt(call_id, 7) AS b
$$;
-- A calling attempt begun by the booking path; its idempotency key.
CREATE FUNCTION pg_temp.begun(call_id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT b.idempotency_key FROM guard.begin_booking_attempt(call_id, 7) AS b
$$;
-- A calling attempt begun an hour ago (past booking_attempt_timeout_seconds), as a booking
-- process that died mid-call leaves it.
CREATE FUNCTION pg_temp.aged(call_id bigint) RETURNS text LANGUAGE sql AS $$
    INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at)
    VALUES (681, call_id, 7, 'aged-' || call_id, now() - interval '1 hour')
    RETURNING idempotency_key
$$;
-- The appointment the calendar made for a call, recorded in the closing transaction.
CREATE FUNCTION pg_temp.booked(call_id bigint) RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id)
    VALUES (call_id, 681, call_id, 'uid-' || call_id)
    RETURNING id
$$;
-- The status of the call's review item for an unknown booking outcome.
CREATE FUNCTION pg_temp.review_status(call_id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT r.status FROM guard.review_items AS r WHERE r.call_id = $1 AND r.reason = 'booking_outcome_unknown'
$$;
CREATE FUNCTION pg_temp.state(call_id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT b.state FROM guard.booking_attempts AS b WHERE b.call_id = $1 ORDER BY b.id DESC LIMIT 1
$$;
CREATE FUNCTION pg_temp.complete(call_id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT guard.complete_booking_attempt(
        (SELECT b.idempotency_key FROM guard.booking_attempts AS b WHERE b.call_id = $1 ORDER BY b.id DESC LIMIT 1),
        $1, 'uid-' || $1
    )
$$;
CREATE FUNCTION pg_temp.fail(call_id bigint, context jsonb DEFAULT '{}') RETURNS bigint LANGUAGE sql AS $$
    SELECT guard.fail_booking_attempt(
        (SELECT b.idempotency_key FROM guard.booking_attempts AS b WHERE b.call_id = $1 ORDER BY b.id DESC LIMIT 1),
        'calendar_booking_failure', context
    )
$$;

-- (none) -> calling
SELECT is(
    (SELECT b.outcome FROM guard.begin_booking_attempt(6801, 7) AS b), 'started', 'begin starts an attempt'
);
SELECT is(pg_temp.state(6801), 'calling', '(none) -> calling');

-- calling -> booked, within the timeout
SELECT pg_temp.booked(6801);
SELECT is(pg_temp.complete(6801), 'booked', 'calling -> booked: complete within the timeout');
SELECT results_eq(
    $$SELECT state, finished_at IS NOT NULL, appointment_id, booking_uid FROM guard.booking_attempts
      WHERE call_id = 6801$$,
    $$VALUES ('booked', TRUE, 6801::bigint, 'uid-6801')$$,
    'a booked attempt is stamped and names its appointment and uid'
);

-- calling -> recovered: completed after the timeout (nobody marked it unknown yet)
SELECT pg_temp.aged(6802);
SELECT pg_temp.booked(6802);
SELECT is(pg_temp.complete(6802), 'recovered', 'calling past its timeout -> recovered, not booked');

-- The timeout's boundary, both sides: 119 s is still booked, 121 s is recovered.
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at) VALUES
(681, 6803, 7, 'young', now() - interval '119 seconds'),
(681, 6804, 7, 'old', now() - interval '121 seconds');
SELECT pg_temp.booked(6803);
SELECT pg_temp.booked(6804);
SELECT is(pg_temp.complete(6803), 'booked', 'calling 119 s (timeout 120 s) -> booked');
SELECT is(pg_temp.complete(6804), 'recovered', 'calling 121 s (timeout 120 s) -> recovered');

-- calling -> failed, calling -> queued
SELECT pg_temp.begun(6805);
SELECT pg_temp.fail(6805);
SELECT results_eq(
    $$SELECT state, finished_at IS NOT NULL, failure_reason FROM guard.booking_attempts WHERE call_id = 6805$$,
    $$VALUES ('failed', TRUE, 'calendar_booking_failure')$$,
    'calling -> failed, stamped with the reason'
);
SELECT pg_temp.begun(6806);
SELECT pg_temp.fail(6806, '{"queued": true}');
SELECT is(pg_temp.state(6806), 'queued', 'calling -> queued: the breaker refused the call');
SELECT pg_temp.begun(6807);
SELECT pg_temp.fail(6807, '{"queued": false}');
SELECT is(pg_temp.state(6807), 'failed', 'calling -> failed when the context says queued is false');

-- calling -> unknown: reconcile marks only the attempts past their timeout
SELECT pg_temp.aged(6808);
SELECT pg_temp.begun(6809);
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at) VALUES
(681, 6810, 7, 'just-in-time', now() - interval '119 seconds');
SELECT guard.reconcile();
SELECT is(pg_temp.state(6808), 'unknown', 'calling past its timeout -> unknown (reconcile)');
SELECT is(pg_temp.state(6809), 'calling', 'a fresh calling attempt is left calling by reconcile');
SELECT is(pg_temp.state(6810), 'calling', 'calling 119 s (timeout 120 s) is left calling by reconcile');
SELECT is(
    (
        SELECT count(*)::integer FROM guard.review_items
        WHERE call_id = 6808 AND reason = 'booking_outcome_unknown'
    ),
    1, 'an attempt marked unknown is queued for review'
);
SELECT is(
    (
        SELECT count(*)::integer FROM guard.review_items
        WHERE call_id IN (6809, 6810)
    ), 0,
    'an attempt still in time is not queued for review'
);

-- unknown -> recovered, unknown -> failed, unknown -> queued (each settles the review item)
SELECT pg_temp.booked(6808);
SELECT is(pg_temp.complete(6808), 'recovered', 'unknown -> recovered');
SELECT is(pg_temp.review_status(6808), 'resolved', 'a recovered attempt''s review item is resolved');
SELECT pg_temp.aged(6811);
SELECT pg_temp.aged(6812);
SELECT pg_temp.aged(6813);
SELECT pg_temp.aged(6814);
SELECT guard.reconcile();
SELECT is(
    (SELECT array_agg(pg_temp.state(g) ORDER BY g) FROM generate_series(6811, 6814) AS g),
    ARRAY['unknown', 'unknown', 'unknown', 'unknown'], 'four more attempts are unknown'
);
SELECT pg_temp.fail(6811);
SELECT is(pg_temp.state(6811), 'failed', 'unknown -> failed');
SELECT is(pg_temp.review_status(6811), 'resolved', 'a failed unknown attempt''s review item is resolved');
SELECT pg_temp.fail(6812, '{"queued": true}');
SELECT is(pg_temp.state(6812), 'queued', 'unknown -> queued');

-- unknown -> failed by reconcile, once a person closed its review item; not while it is open
UPDATE guard.review_items SET status = 'resolved', note = 'calendar has nothing'
WHERE call_id = 6813 AND reason = 'booking_outcome_unknown';
SELECT guard.reconcile();
SELECT results_eq(
    $$SELECT state, finished_at IS NOT NULL FROM guard.booking_attempts WHERE call_id = 6813$$,
    $$VALUES ('failed', TRUE)$$,
    'unknown -> failed by reconcile once its review item was closed'
);
SELECT is(pg_temp.state(6814), 'unknown', 'unknown stays unknown while its review item is open');

-- begin on each state of the call's latest attempt
SELECT is(pg_temp.begin_outcome(6814), 'outcome_unknown', 'begin on a call whose attempt is unknown is refused as outcome_unknown');
SELECT pg_temp.aged(6815);
SELECT is(pg_temp.begin_outcome(6815), 'outcome_unknown', 'begin on a call calling past its timeout is refused as outcome_unknown');
SELECT is(pg_temp.begin_outcome(6809), 'in_flight', 'begin on a call calling within its timeout is refused as in_flight');
SELECT is(pg_temp.begin_outcome(6801), 'already_booked', 'begin on a booked call returns its booking');
SELECT is(pg_temp.begin_outcome(6805), 'started', 'begin on a call whose attempt failed starts a new attempt');

-- From the final states: complete is refused (55000), fail keeps the state
SELECT throws_ok(
    'SELECT pg_temp.complete(6801)', '55000', NULL, 'booked -> complete again is refused'
);
SELECT throws_ok(
    'SELECT pg_temp.complete(6802)', '55000', NULL, 'recovered -> complete again is refused'
);
SELECT pg_temp.booked(6811);
SELECT throws_ok(
    $$SELECT guard.complete_booking_attempt('aged-6811', 6811, 'uid-6811')$$, '55000', NULL,
    'failed -> booked is refused'
);
SELECT pg_temp.booked(6812);
SELECT throws_ok(
    $$SELECT guard.complete_booking_attempt('aged-6812', 6812, 'uid-6812')$$, '55000', NULL,
    'queued -> booked is refused'
);
SELECT pg_temp.fail(6801);
SELECT pg_temp.fail(6802);
SELECT is(pg_temp.state(6801), 'booked', 'booked -> a late failure keeps it booked');
SELECT is(pg_temp.state(6802), 'recovered', 'recovered -> a late failure keeps it recovered');
SELECT guard.fail_booking_attempt('aged-6811', 'other', '{"queued": true}');
SELECT is(pg_temp.state(6811), 'failed', 'failed -> a queued failure keeps it failed');
SELECT guard.fail_booking_attempt('aged-6812', 'other');
SELECT is(pg_temp.state(6812), 'queued', 'queued -> a failure keeps it queued');
-- reconcile leaves a final attempt alone, however old
UPDATE guard.booking_attempts SET created_at = created_at - interval '1 day'
WHERE call_id = 6805 AND state = 'failed';
SELECT guard.reconcile();
SELECT is(
    (
        SELECT array_agg(state ORDER BY id) FROM guard.booking_attempts
        WHERE call_id IN (6801, 6802, 6805, 6806)
    ),
    ARRAY['booked', 'recovered', 'failed', 'queued', 'calling'],
    'reconcile moves no final attempt (and the fresh one of a failed call stays calling)'
);

-- Rows written directly, with triggers off, as an adopted database or a superuser writes them.
SET LOCAL session_replication_role = replica;
SELECT throws_ok(
    $$INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state)
      VALUES (681, 6820, 7, 'd1', 'pending')$$,
    '23514', NULL, 'a state outside the journal''s is refused'
);
SELECT throws_ok(
    $$INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state, finished_at)
      VALUES (681, 6820, 7, 'd2', 'calling', now())$$,
    '23514', NULL, 'a calling attempt with a finish time is refused'
);
SELECT throws_ok(
    $$INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state, finished_at)
      VALUES (681, 6820, 7, 'd3', 'unknown', now())$$,
    '23514', NULL, 'an unknown attempt with a finish time is refused'
);
SELECT throws_ok(
    $$INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state)
      VALUES (681, 6820, 7, 'd4', 'failed')$$,
    '23514', NULL, 'a failed attempt without a finish time is refused'
);
SELECT throws_ok(
    $$INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state)
      VALUES (681, 6820, 7, 'd5', 'queued')$$,
    '23514', NULL, 'a queued attempt without a finish time is refused'
);
SELECT throws_ok(
    $$INSERT INTO guard.booking_attempts (
          company_id, call_id, service_id, idempotency_key, state, finished_at, booking_uid
      ) VALUES (681, 6820, 7, 'd6', 'booked', now(), 'uid')$$,
    '23514', NULL, 'a booked attempt without its appointment is refused'
);
SELECT throws_ok(
    $$INSERT INTO guard.booking_attempts (
          company_id, call_id, service_id, idempotency_key, state, finished_at, appointment_id
      ) VALUES (681, 6820, 7, 'd7', 'recovered', now(), 1)$$,
    '23514', NULL, 'a recovered attempt without its booking uid is refused'
);
SELECT throws_ok(
    $$INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state)
      VALUES (681, 6809, 7, 'd8', 'unknown')$$,
    '23505', NULL, 'an unknown attempt beside a calling one of the same call is refused'
);
SELECT throws_ok(
    $$UPDATE guard.booking_attempts SET state = 'calling' WHERE call_id = 6801$$,
    '23514', NULL, 'booked -> calling keeping its finish time is refused'
);
SELECT throws_ok(
    $$UPDATE guard.booking_attempts SET state = 'booked' WHERE call_id = 6811$$,
    '23514', NULL, 'failed -> booked without an appointment is refused'
);
SELECT lives_ok(
    $$INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state, finished_at)
      VALUES (681, 6809, 7, 'd9', 'failed', now())$$,
    'a settled attempt beside a calling one of the same call is a legitimate history'
);
SELECT lives_ok(
    $$INSERT INTO guard.booking_attempts (
          company_id, call_id, service_id, idempotency_key, state, finished_at, appointment_id, booking_uid
      ) VALUES (681, 6821, 7, 'd10', 'recovered', now(), 1, 'uid')$$,
    'a recovered attempt naming its appointment and uid is accepted'
);

SELECT * FROM finish();
ROLLBACK;
