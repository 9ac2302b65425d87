-- check_call (guard.run_checks for one call) re-judges the alerts of the call's appointments
-- check by check: each check resolves only its own alerts that it no longer finds, never another
-- check's. An appointment of the call with a status outside the known set (unknown_value) keeps
-- its one alert open through repeated check_calls by the application role, which calls it (the
-- call's flags, which do not show that active appointment, keep theirs: a call alert).
BEGIN;
SELECT plan(5);

INSERT INTO companies (id, name) VALUES (1, 'A');
SET LOCAL session_replication_role = replica;
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status, created_at)
VALUES (1, 1, 'c1', 'inbound', 'unlinked', now() - interval '1 hour');
INSERT INTO appointments (id, company_id, call_id, status)
VALUES (1, 1, 1, 'canceled');
SET LOCAL session_replication_role = origin;

SET LOCAL ROLE guard_app;
SELECT results_eq(
    $$SELECT check_id, opened, resolved FROM guard.check_call(1) WHERE opened + resolved > 0
      ORDER BY check_id$$,
    $$VALUES ('flags_contradict_appointments'::text, 1, 0), ('unknown_value', 1, 0)$$,
    'the first check_call opens the call''s and the appointment''s alert, resolves nothing'
);
SELECT is(
    (SELECT sum(resolved)::int FROM guard.check_call(1)),
    0,
    'a second check_call resolves nothing'
);
RESET ROLE;

SELECT results_eq(
    $$SELECT fingerprint, status, occurrences FROM guard.alerts ORDER BY id$$,
    $$VALUES ('flags_contradict_appointments:call:1'::text, 'open'::text, 1),
             ('unknown_value:appointment:1', 'open', 1)$$,
    'one alert each, open, seen twice (the repeat not written within its refresh period): no other check of the call resolved it'
);

-- the other side: the status corrected (the appointment cancelled), each check resolves its own
SET LOCAL session_replication_role = replica;
UPDATE appointments SET status = 'cancelled'
WHERE id = 1;
SET LOCAL session_replication_role = origin;
SET LOCAL ROLE guard_app;
SELECT results_eq(
    $$SELECT check_id, resolved FROM guard.check_call(1) WHERE resolved > 0 ORDER BY check_id$$,
    $$VALUES ('flags_contradict_appointments'::text, 1), ('unknown_value', 1)$$,
    'once the appointment is cancelled, each check resolves its own alert'
);
RESET ROLE;
SELECT results_eq(
    $$SELECT DISTINCT status, resolution FROM guard.alerts$$,
    $$VALUES ('resolved'::text, 'fixed'::text)$$,
    'both resolved as fixed'
);

SELECT * FROM finish();
ROLLBACK;
