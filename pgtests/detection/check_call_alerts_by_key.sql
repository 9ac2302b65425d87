-- check_call (guard.run_checks for one call) resolves the alerts of its call and of each of the
-- call's appointments, found by their full keys (check, entity type, entity id): every appointment
-- of the call is judged, the count of resolved alerts adds them up, and an alert of another entity
-- with the same id (a call whose id is one of the appointments', an appointment whose id is the
-- call's) is never touched. A finding whose alert is open is a repeat of it, not a second alert.
BEGIN;
SELECT plan(7);

INSERT INTO companies (id, name) VALUES (1, 'A');
SET LOCAL session_replication_role = replica;
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status, created_at)
VALUES (1, 1, 'c1', 'inbound', 'unlinked', now() - interval '1 hour');
-- three appointments of call 1 with a status outside the known set (unknown_value)
INSERT INTO appointments (id, company_id, call_id, status)
VALUES (11, 1, 1, 'canceled'), (12, 1, 1, 'canceled'), (13, 1, 1, 'canceled');
SET LOCAL session_replication_role = origin;

-- an open alert of call 11 of the same check: same entity id as appointment 11, another entity
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity, message)
VALUES ('unknown_value:call:11', 'unknown_value', 1, 'call', 11, 'medium', 'another call');
-- and one of appointment 1, of another call: same entity id as call 1
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity, message)
VALUES ('unknown_value:appointment:1', 'unknown_value', 1, 'appointment', 1, 'medium', 'another call''s appointment');

SET LOCAL ROLE guard_app;
SELECT results_eq(
    $$SELECT opened, resolved FROM guard.check_call(1) WHERE check_id = 'unknown_value'$$,
    $$VALUES (3, 0)$$,
    'the first check_call opens one alert per appointment'
);
SELECT results_eq(
    $$SELECT opened, repeated, resolved FROM guard.check_call(1) WHERE check_id = 'unknown_value'$$,
    $$VALUES (0, 3, 0)$$,
    'a second check_call finds each open alert again: three repeats, nothing opened'
);
RESET ROLE;

SET LOCAL session_replication_role = replica;
UPDATE appointments SET status = 'cancelled'
WHERE id = 12;
SET LOCAL session_replication_role = origin;
SET LOCAL ROLE guard_app;
SELECT results_eq(
    $$SELECT resolved FROM guard.check_call(1) WHERE check_id = 'unknown_value'$$,
    $$VALUES (1)$$,
    'the second appointment corrected: one alert resolved'
);
RESET ROLE;
SELECT results_eq(
    $$SELECT fingerprint, status FROM guard.alerts WHERE check_id = 'unknown_value' ORDER BY fingerprint$$,
    $$VALUES ('unknown_value:appointment:1'::text, 'open'::text),
             ('unknown_value:appointment:11', 'open'),
             ('unknown_value:appointment:12', 'resolved'),
             ('unknown_value:appointment:13', 'open'),
             ('unknown_value:call:11', 'open')$$,
    'only that appointment''s alert is resolved'
);

SET LOCAL session_replication_role = replica;
UPDATE appointments SET status = 'cancelled'
WHERE id IN (11, 13);
SET LOCAL session_replication_role = origin;
SET LOCAL ROLE guard_app;
SELECT results_eq(
    $$SELECT resolved FROM guard.check_call(1) WHERE check_id = 'unknown_value'$$,
    $$VALUES (2)$$,
    'the first and the last corrected together: both counted'
);
RESET ROLE;
SELECT results_eq(
    $$SELECT fingerprint, status FROM guard.alerts WHERE check_id = 'unknown_value' ORDER BY fingerprint$$,
    $$VALUES ('unknown_value:appointment:1'::text, 'open'::text),
             ('unknown_value:appointment:11', 'resolved'),
             ('unknown_value:appointment:12', 'resolved'),
             ('unknown_value:appointment:13', 'resolved'),
             ('unknown_value:call:11', 'open')$$,
    'every appointment''s alert resolved; those of call 11 and of appointment 1 are not the call''s and stay open'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.alerts
        WHERE fingerprint LIKE 'unknown_value:appointment:%' AND entity_id IN (11, 12, 13)
    ),
    3,
    'one alert per appointment all along: the repeats wrote no second one'
);

SELECT * FROM finish();
ROLLBACK;
