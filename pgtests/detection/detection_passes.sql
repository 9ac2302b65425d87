-- Detection passes over time: a repeat is written only when its alert's last sighting is due for a
-- refresh, an alert is silent (superseded) only when neither it nor its check's previous pass saw
-- it within the silence, a disabled
-- rule raises nothing, and the windowed pass re-checks old entities only for the rule whose
-- alert is open on them. Offending rows are loaded with triggers bypassed.
BEGIN;
SELECT plan(12);

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

-- First pass opens the alert. A repeat is written (occurrences, last_seen_at) only when the
-- alert's last sighting is due for a refresh: older than 5 minutes times (6 + id % 7), 30 to 60
-- minutes (guard.record_findings); sooner it is counted, not written.
SELECT * FROM guard.detect();
UPDATE guard.alerts SET last_seen_at = now() - interval '10 seconds'
WHERE check_id = 'flags_contradict_appointments' AND entity_id = 1;
SELECT results_eq(
    $$SELECT opened, repeated FROM guard.detect() WHERE check_id = 'flags_contradict_appointments'$$,
    $$VALUES (0, 1)$$,
    'a repeat within the refresh period is counted as a repeat'
);
SELECT results_eq(
    $$SELECT status, occurrences, last_seen_at = now() - interval '10 seconds'
      FROM guard.alerts WHERE check_id = 'flags_contradict_appointments' AND entity_id = 1$$,
    $$VALUES ('open'::text, 1, TRUE)$$,
    'and not written: occurrences and last_seen_at as they were'
);

-- Exactly at the end of its refresh period it is still not due; a second later it is.
UPDATE guard.alerts SET last_seen_at = now() - interval '5 minutes' * (6 + id % 7)
WHERE check_id = 'flags_contradict_appointments' AND entity_id = 1;
SELECT * FROM guard.detect();
SELECT results_eq(
    $$SELECT occurrences, last_seen_at = now() - interval '5 minutes' * (6 + id % 7)
      FROM guard.alerts WHERE check_id = 'flags_contradict_appointments' AND entity_id = 1$$,
    $$VALUES (1, TRUE)$$,
    'a repeat at the end of the refresh period is not written'
);
UPDATE guard.alerts SET last_seen_at = last_seen_at - interval '1 second'
WHERE check_id = 'flags_contradict_appointments' AND entity_id = 1;
SELECT * FROM guard.detect();
SELECT results_eq(
    $$SELECT status, occurrences, last_seen_at = now()
      FROM guard.alerts WHERE check_id = 'flags_contradict_appointments' AND entity_id = 1$$,
    $$VALUES ('open'::text, 2, TRUE)$$,
    'a second past it the repeat is written: occurrences bumped, last_seen_at moved to the pass'
);

-- The silence an alert may keep (throttle + the job's interval) is measured from the later of its
-- last_seen_at and the start of its check's previous pass that ran through, which saw every open
-- alert of the check: an alert not written for an hour is not silent while passes run.
UPDATE guard.alerts SET last_seen_at = now() - guard.alert_silence() - interval '1 second'
WHERE check_id = 'flags_contradict_appointments' AND entity_id = 1;
UPDATE guard.detection_runs SET pass_started_at = now() - guard.alert_silence()
WHERE check_id = 'flags_contradict_appointments';
SELECT * FROM guard.detect();
SELECT results_eq(
    $$SELECT status, occurrences FROM pg_temp.alerts_of('flags_contradict_appointments', 1)$$,
    $$VALUES ('open'::text, 2)$$,
    'its previous pass exactly at the end of the silence: a repeat, not superseded'
);
UPDATE guard.detection_runs SET pass_started_at = now() - guard.alert_silence() - interval '1 second'
WHERE check_id = 'flags_contradict_appointments';
SELECT * FROM guard.detect();
SELECT results_eq(
    $$SELECT status, occurrences FROM pg_temp.alerts_of('flags_contradict_appointments', 1)$$,
    $$VALUES ('resolved'::text, 2), ('open'::text, 1)$$,
    'its previous pass at the end of the silence: a repeat; a second before it: superseded'
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
    $$VALUES ('open'::text, 1)$$,
    'an old row that still offends keeps its alert open through each pass (not written within its refresh period)'
);

SELECT * FROM finish();
ROLLBACK;
