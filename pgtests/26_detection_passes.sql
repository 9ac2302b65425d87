-- Detection passes over time: a repeat bumps its alert and moves last_seen_at, the job's next
-- pass just past the throttle window still bumps (only a longer silence supersedes), a disabled
-- rule raises nothing, and the windowed pass re-checks old entities only for the rule whose
-- alert is open on them. Offending rows are loaded with triggers bypassed.
BEGIN;
SELECT plan(10);

INSERT INTO companies (id, name) VALUES (1, 'A');
SET LOCAL session_replication_role = replica;
-- Call 1: recent, with an active appointment its flags do not show (flags_contradict_appointments).
-- Call 2: the same, but two days old: outside the detection window.
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status, created_at)
VALUES
(1, 1, 'recent', 'inbound', 'unlinked', now()),
(2, 1, 'old', 'inbound', 'unlinked', now() - interval '2 days');
INSERT INTO appointments (id, company_id, call_id) VALUES (1, 1, 1), (2, 1, 2);
SET LOCAL session_replication_role = origin;

CREATE FUNCTION pg_temp.alerts_of(detection_check text, call bigint) RETURNS TABLE (status text, occurrences integer)
LANGUAGE sql AS $$
    SELECT a.status, a.occurrences FROM guard.alerts AS a
    WHERE a.check_id = detection_check AND a.entity_type = 'call' AND a.entity_id = call
    ORDER BY a.id
$$;

-- A disabled check raises nothing.
UPDATE guard.checks SET enabled = FALSE
WHERE id = 'flags_contradict_appointments';
SELECT is_empty(
    $$SELECT check_id FROM guard.detect() WHERE check_id = 'flags_contradict_appointments'$$,
    'a disabled check is not run'
);
SELECT is_empty($$SELECT * FROM pg_temp.alerts_of('flags_contradict_appointments', 1)$$, 'and raises no alert');
UPDATE guard.checks SET enabled = TRUE
WHERE id = 'flags_contradict_appointments';

-- First pass opens the alert; a repeat bumps it and moves last_seen_at to now.
SELECT * FROM guard.detect();
UPDATE guard.alerts SET last_seen_at = now() - interval '10 seconds'
WHERE check_id = 'flags_contradict_appointments' AND entity_id = 1;
SELECT * FROM guard.detect();
SELECT results_eq(
    $$SELECT status, occurrences FROM pg_temp.alerts_of('flags_contradict_appointments', 1)$$,
    $$VALUES ('open'::text, 2)$$,
    'a repeat within the throttle window bumps the open alert'
);
SELECT is((
    SELECT last_seen_at FROM guard.alerts
    WHERE check_id = 'flags_contradict_appointments' AND entity_id = 1
), now(), 'a repeat moves last_seen_at to the pass');

-- The next pass of the detect job comes one interval (300 s) later, a moment more or less: an
-- alert found by every pass is a repeat, though the throttle window (300 s) has just passed.
UPDATE guard.alerts
SET last_seen_at = now() - make_interval(secs => (guard.setting('alert_throttle_seconds') #>> '{}')::integer + 1)
WHERE check_id = 'flags_contradict_appointments' AND entity_id = 1;
SELECT * FROM guard.detect();
SELECT results_eq(
    $$SELECT status, occurrences FROM pg_temp.alerts_of('flags_contradict_appointments', 1)$$,
    $$VALUES ('open'::text, 3)$$,
    'the next pass of the job, a second past the throttle window, bumps; it does not supersede'
);

-- A repeat exactly at the end of the silence an alert keeps (throttle + the job's interval) is
-- still a repeat; a second later it is a new alert.
UPDATE guard.alerts SET last_seen_at = now() - guard.alert_silence()
WHERE check_id = 'flags_contradict_appointments' AND entity_id = 1;
SELECT * FROM guard.detect();
UPDATE guard.alerts SET last_seen_at = now() - guard.alert_silence() - interval '1 second'
WHERE check_id = 'flags_contradict_appointments' AND entity_id = 1 AND status = 'open';
SELECT * FROM guard.detect();
SELECT results_eq(
    $$SELECT status, occurrences FROM pg_temp.alerts_of('flags_contradict_appointments', 1)$$,
    $$VALUES ('resolved'::text, 4), ('open'::text, 1)$$,
    'a repeat at the end of the silence bumps; one after it supersedes'
);
SELECT is(guard.alert_silence(), interval '600 seconds', 'the silence: 300 s throttle + 300 s interval');

-- The old call offends flags_contradict_appointments but lies outside the window; an open alert
-- of ANOTHER rule on it makes that rule re-check it, not this one. (Rules run in id order: the
-- other rule, recent_booking_failure, runs after this one, so its alert is still open then.)
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity, message)
VALUES ('recent_booking_failure:call:2', 'recent_booking_failure', 1, 'call', 2, 'high', 'x');
SELECT * FROM guard.detect();
SELECT is_empty(
    $$SELECT * FROM pg_temp.alerts_of('flags_contradict_appointments', 2)$$,
    'an old entity is re-checked only by the rule whose alert is open on it'
);
SELECT results_eq(
    $$SELECT status FROM pg_temp.alerts_of('recent_booking_failure', 2)$$,
    $$VALUES ('resolved'::text)$$,
    'that rule resolves its alert when the entity no longer offends it'
);

-- An open alert about a row older than the window that still offends (opened by check_call) is
-- found again by every pass through its entity, not resolved as fixed.
SELECT * FROM guard.check_call(2);
SELECT * FROM guard.detect();
SELECT * FROM guard.detect();
SELECT results_eq(
    $$SELECT status, occurrences FROM pg_temp.alerts_of('flags_contradict_appointments', 2)$$,
    $$VALUES ('open'::text, 3)$$,
    'an old row that still offends keeps its alert open, bumped by each pass'
);

SELECT * FROM finish();
ROLLBACK;
