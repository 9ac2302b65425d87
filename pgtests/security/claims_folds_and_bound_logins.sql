-- More edges a sample of generated mutants found untested (docs/testing.md, "Mutation testing"):
-- guard.claim_deliveries hands out a review notice nobody holds and one whose lease ended, never
-- one under a running lease; guard.fold_metric_totals measures a recovery from the opening it
-- ended, not from a later one; guard.queue_missing_in_calendar, called by a login bound to one
-- company, compares that company's appointments only; guard.record_validation refuses every
-- NULL argument alike; settling an attempt closes its own alert only.
BEGIN;
SELECT plan(12);

INSERT INTO companies (id, name) VALUES (731, 'A'), (732, 'B');

-- Review notices: free, under a running lease, under a lease that ended.
INSERT INTO guard.review_items (id, company_id, reason, details)
OVERRIDING SYSTEM VALUE
VALUES
(7301, 731, 'other', '{"n": 1}'),
(7302, 731, 'other', '{"n": 2}'),
(7303, 731, 'other', '{"n": 3}');
INSERT INTO guard.deliveries (kind, subject, channel, claimed_by, claimed_until) VALUES
('review_notice', 7301, 'edge', NULL, NULL),
('review_notice', 7302, 'edge', 'w1', now() + interval '30 s'),
('review_notice', 7303, 'edge', 'w1', now() - interval '1 s');
SELECT results_eq(
    $$SELECT subject FROM guard.claim_deliveries('review_notice', 'edge', 'w2', 10, 60)$$,
    $$VALUES (7301::bigint), (7303::bigint)$$,
    'claim_deliveries: a free notice and one whose lease ended, not one under a running lease'
);
SELECT results_eq(
    $$SELECT subject, claimed_by FROM guard.deliveries WHERE channel = 'edge' ORDER BY 1$$,
    $$VALUES (7301::bigint, 'w2'::text), (7302, 'w1'), (7303, 'w2')$$,
    'the running lease stays its holder''s'
);

-- A circuit opened, recovered 60 s later, and opened again 60 s after that: the recovery took
-- 60 s, measured from the opening it ended.
UPDATE guard.metric_watermark SET folded_before = '-infinity';
INSERT INTO guard.breaker_events (
    key, generation, from_state, to_state, reason, host, pid, occurred_at, recorded_at
) VALUES
('edge73', 1, 'closed', 'open', 'failures', 'h', 1, now() - interval '3 hours', now() - interval '3 hours'),
('edge73', 2, 'open', 'half_open', 'cooldown', 'h', 1, now() - interval '3 hours' + interval '30 s', now() - interval '3 hours'),
('edge73', 3, 'half_open', 'closed', 'probe', 'h', 1, now() - interval '3 hours' + interval '60 s', now() - interval '3 hours'),
('edge73', 4, 'closed', 'open', 'failures', 'h', 1, now() - interval '3 hours' + interval '120 s', now() - interval '3 hours');
SELECT cmp_ok(guard.fold_metric_totals(), '>=', 1::bigint, 'fold_metric_totals: the recovery is folded');
SELECT results_eq(
    $$SELECT label, total FROM guard.metric_totals WHERE counter = 'breaker_recovery' AND label LIKE 'edge73|%'
      AND label LIKE '%sum\_us'$$,
    $$VALUES ('edge73|sum_us'::text, 60000000::bigint)$$,
    'the recovery is 60 s, from the opening it ended, not from the later one'
);

-- A login bound to one company compares that company's appointments only.
INSERT INTO calls (id, company_id, retell_call_id) VALUES (7301, 731, 'c7301'), (7302, 732, 'c7302');
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, starts_at, created_at) VALUES
(7301, 731, 7301, 'uid-bound', '2032-01-10 10:00Z', now() - interval '1 day'),
(7302, 732, 7302, 'uid-other', '2032-01-10 10:00Z', now() - interval '1 day');
CREATE ROLE guard_edge73_login LOGIN;
SELECT guard.tenant_grant('guard_edge73_login', 731);
DO $$ BEGIN EXECUTE format('GRANT %I TO guard_edge73_login', guard.role('application')); END $$;
SET SESSION AUTHORIZATION guard_edge73_login;
SELECT set_config(
    'edge73.bound',
    (
        SELECT string_agg(m.appointment_id::text, ',' ORDER BY m.appointment_id)
        FROM guard.queue_missing_in_calendar(NULL, '2032-01-01', '2032-02-01', now(), '{}') AS m
    ),
    TRUE
);
RESET SESSION AUTHORIZATION;
SELECT is(
    current_setting('edge73.bound'), '7301',
    'queue_missing_in_calendar: a login bound to one company compares its appointments only, not the'
    || ' other company''s'
);

-- guard.record_validation refuses each NULL argument with the same error, before it looks
-- anything up (a NULL call is not "a call that does not exist").
SELECT throws_ok(
    $$SELECT guard.record_validation(NULL, 7301, 7301, TRUE, NULL, 1)$$, '22004', NULL,
    'record_validation: a NULL company is refused as NULL'
);
SELECT throws_ok(
    $$SELECT guard.record_validation(731, NULL, 7301, TRUE, NULL, 1)$$, '22004', NULL,
    'record_validation: a NULL call is refused as NULL'
);
SELECT throws_ok(
    $$SELECT guard.record_validation(731, 7301, NULL, TRUE, NULL, 1)$$, '22004', NULL,
    'record_validation: a NULL appointment is refused as NULL'
);
SELECT throws_ok(
    $$SELECT guard.record_validation(731, 7301, 7301, NULL, NULL, 1)$$, '22004', NULL,
    'record_validation: a NULL outcome is refused as NULL'
);
SELECT throws_ok(
    $$SELECT guard.record_validation(731, 7301, 7301, TRUE, NULL, NULL)$$, '22004', NULL,
    'record_validation: a NULL latency is refused as NULL'
);
SELECT lives_ok(
    $$SELECT guard.record_validation(731, 7301, 7301, TRUE, NULL, 1)$$,
    'record_validation: the same call with every argument is recorded'
);

-- Settling an attempt whose outcome was unknown closes that attempt's alert, no other.
INSERT INTO guard.alerts (id, fingerprint, check_id, entity_type, entity_id, severity, message)
OVERRIDING SYSTEM VALUE
VALUES
(7311, 'booking_outcome_unknown:booking_attempt:7311', 'booking_outcome_unknown', 'booking_attempt', 7311, 'high', 'x'),
(7312, 'booking_outcome_unknown:booking_attempt:7312', 'booking_outcome_unknown', 'booking_attempt', 7312, 'high', 'x'),
(7313, 'booked_without_appointment:call:7301', 'booked_without_appointment', 'call', 7301, 'high', 'x');
SELECT guard.settle_unknown_booking_attempt(7311, 7301, 'recorded');
SELECT results_eq(
    $$SELECT id, status FROM guard.alerts WHERE id BETWEEN 7311 AND 7313 ORDER BY id$$,
    $$VALUES (7311::bigint, 'resolved'::text), (7312, 'open'), (7313, 'open')$$,
    'settle_unknown_booking_attempt: that attempt''s alert is resolved; another attempt''s and other'
    || ' alerts stay open'
);

SELECT * FROM finish();
ROLLBACK;
