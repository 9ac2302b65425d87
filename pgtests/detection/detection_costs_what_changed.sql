-- A windowed pass costs what changed, not what is open: in a burst it reads the rows observed since
-- its check's previous pass (less the overlap), probes every open alert (only those due for a
-- refresh above detection_probe_every_alerts), and writes only the alerts that are new, resolved,
-- superseded or due for a refresh of last_seen_at (docs/jobs.md, "What a pass reads and writes").
-- Asserted on row versions (ctid) and this transaction's update counts (pg_stat_xact_user_tables),
-- not on time.
BEGIN;
SELECT plan(20);

INSERT INTO companies (id, name) VALUES (1, 'A');
-- A burst: 200 calls without a direction (call_without_direction), written as a legacy load would.
SELECT pgtap_setup.legacy_calls(1, 200, now() - interval '20 min');

-- A window of more than 100 calls is a burst here: each check reads what changed since its
-- previous pass (detection_full_window_calls; 100,000 by default).
UPDATE guard.settings SET value = '100'
WHERE key = 'detection_full_window_calls';

CREATE TEMPORARY TABLE seen_versions AS SELECT 0::bigint AS updates;
CREATE FUNCTION pg_temp.alert_updates() RETURNS bigint LANGUAGE sql AS $$
    SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relid = 'guard.alerts'::regclass
$$;

SELECT results_eq(
    $$SELECT offending, opened FROM guard.detect() WHERE check_id = 'call_without_direction'$$,
    $$VALUES (200, 200)$$,
    'the bad rows are detected: one alert each'
);
CREATE TEMPORARY TABLE versions AS
SELECT
    id,
    ctid::text AS version,
    occurrences,
    last_seen_at
FROM guard.alerts
WHERE check_id = 'call_without_direction';
UPDATE seen_versions SET updates = pg_temp.alert_updates();

-- The next pass: the rows still offend and are counted, but no open alert is rewritten.
SELECT results_eq(
    $$SELECT offending, opened, repeated, resolved FROM guard.detect()
      WHERE check_id = 'call_without_direction'$$,
    $$VALUES (200, 0, 200, 0)$$,
    'the next pass finds every row again: 200 repeats'
);
SELECT is(
    pg_temp.alert_updates() - (SELECT updates FROM seen_versions), 0::bigint,
    'and updates no alert (n_tup_upd of guard.alerts unchanged)'
);
SELECT is_empty(
    $$SELECT v.id FROM versions AS v INNER JOIN guard.alerts AS a ON a.id = v.id
      WHERE a.ctid::text <> v.version OR a.status <> 'open'$$,
    'every open alert keeps its row version'
);

-- A row that stops offending resolves its alert at the next pass, though it is older than what the
-- pass reads of the window: every open alert is probed. Only that alert is written.
UPDATE seen_versions SET updates = pg_temp.alert_updates();
UPDATE calls SET direction = 'inbound'
WHERE id = 7;
SELECT results_eq(
    $$SELECT offending, opened, resolved FROM guard.detect() WHERE check_id = 'call_without_direction'$$,
    $$VALUES (199, 0, 1)$$,
    'a fixed row resolves its alert at the next pass'
);
SELECT results_eq(
    $$SELECT status, resolution FROM guard.alerts WHERE fingerprint = 'call_without_direction:call:7'$$,
    $$VALUES ('resolved'::text, 'fixed'::text)$$,
    'as fixed'
);
SELECT is(
    pg_temp.alert_updates() - (SELECT updates FROM seen_versions), 1::bigint,
    'one alert written: the resolved one'
);

-- A row written since the previous pass, observed inside the overlap (5 minutes and the grace
-- period before that pass), is read and opens its alert.
SET LOCAL session_replication_role = replica;
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status, created_at)
VALUES (201, 1, 'c201', NULL, 'unlinked', now() - interval '4 min');
SET LOCAL session_replication_role = origin;
SELECT results_eq(
    $$SELECT offending, opened FROM guard.detect() WHERE check_id = 'call_without_direction'$$,
    $$VALUES (200, 1)$$,
    'a row written since the previous pass is found'
);

-- Refresh, both sides: last_seen_at exactly at the end of each alert's period (5 minutes times
-- 6 + id % 7) is not written; a second older, every one is, once.
UPDATE guard.alerts SET last_seen_at = now() - interval '5 minutes' * (6 + id % 7)
WHERE check_id = 'call_without_direction' AND status = 'open';
UPDATE seen_versions SET updates = pg_temp.alert_updates();
SELECT * FROM guard.detect();
SELECT is(
    pg_temp.alert_updates() - (SELECT updates FROM seen_versions), 0::bigint,
    'at the end of its refresh period no alert is written'
);
UPDATE guard.alerts SET last_seen_at = now() - interval '5 minutes' * (6 + id % 7) - interval '1 second'
WHERE check_id = 'call_without_direction' AND status = 'open';
UPDATE seen_versions SET updates = pg_temp.alert_updates();
SELECT results_eq(
    $$SELECT offending, opened, repeated FROM guard.detect() WHERE check_id = 'call_without_direction'$$,
    $$VALUES (200, 0, 200)$$,
    'a second past it the pass repeats every one'
);
SELECT results_eq(
    $$SELECT pg_temp.alert_updates() - (SELECT updates FROM seen_versions),
             (SELECT count(*) FROM guard.alerts
              WHERE check_id = 'call_without_direction' AND status = 'open'
                AND last_seen_at = now() AND occurrences = 2)$$,
    $$VALUES (200::bigint, 200::bigint)$$,
    'and writes each once: occurrences 2, last_seen_at the pass'
);
UPDATE seen_versions SET updates = pg_temp.alert_updates();
SELECT * FROM guard.detect();
SELECT is(
    pg_temp.alert_updates() - (SELECT updates FROM seen_versions), 0::bigint,
    'the pass after the refresh writes none'
);

-- A row older than the overlap that starts to offend after the passes read it is not read again
-- while the window is a burst (the detection queue or check_call finds it, docs/jobs.md); a window
-- within detection_full_window_calls is read whole, and the next pass finds it.
SET LOCAL session_replication_role = replica;
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status, created_at)
VALUES (202, 1, 'c202', 'inbound', 'unlinked', now() - interval '20 min');
SELECT * FROM guard.detect();
UPDATE calls SET direction = NULL
WHERE id = 202;
SET LOCAL session_replication_role = origin;
SELECT results_eq(
    $$SELECT opened FROM guard.detect() WHERE check_id = 'call_without_direction'$$,
    $$VALUES (0)$$,
    'in a burst, a later write to a row already read is not read again by the pass'
);
UPDATE guard.settings SET value = '100000'
WHERE key = 'detection_full_window_calls';
SELECT results_eq(
    $$SELECT opened FROM guard.detect() WHERE check_id = 'call_without_direction'$$,
    $$VALUES (1)$$,
    'a window within detection_full_window_calls is read whole: the next pass finds it'
);

-- A check with more open alerts than detection_probe_every_alerts probes only those due for a
-- refresh (5 minutes times 6 + id % 7): a fixed row and a deleted one keep their alerts until
-- then, and are resolved by the first pass after it. Both sides: exactly at the end of the
-- period not probed, a second past it probed.
UPDATE guard.settings SET value = '100'
WHERE key = 'detection_probe_every_alerts';
SET LOCAL session_replication_role = replica;
UPDATE calls SET direction = 'inbound'
WHERE id = 9;
DELETE FROM calls
WHERE id = 10;
SET LOCAL session_replication_role = origin;
UPDATE seen_versions SET updates = pg_temp.alert_updates();
SELECT results_eq(
    $$SELECT offending, opened, repeated, resolved FROM guard.detect()
      WHERE check_id = 'call_without_direction'$$,
    $$VALUES (201, 0, 201, 0)$$,
    'not due: the fixed and the deleted row are not probed, and counted as before'
);
SELECT is(
    pg_temp.alert_updates() - (SELECT updates FROM seen_versions), 0::bigint,
    'and no alert is written'
);
UPDATE guard.alerts SET last_seen_at = now() - interval '5 minutes' * (6 + id % 7)
WHERE fingerprint IN ('call_without_direction:call:9', 'call_without_direction:call:10');
SELECT results_eq(
    $$SELECT resolved FROM guard.detect() WHERE check_id = 'call_without_direction'$$,
    $$VALUES (0)$$,
    'at the end of their refresh period they are not probed yet'
);
UPDATE guard.alerts SET last_seen_at = now() - interval '5 minutes' * (6 + id % 7) - interval '1 second'
WHERE fingerprint IN ('call_without_direction:call:9', 'call_without_direction:call:10');
SELECT results_eq(
    $$SELECT offending, opened, resolved FROM guard.detect() WHERE check_id = 'call_without_direction'$$,
    $$VALUES (199, 0, 2)$$,
    'a second past it the pass probes them and resolves both'
);
SELECT results_eq(
    $$SELECT fingerprint, resolution FROM guard.alerts
      WHERE fingerprint IN ('call_without_direction:call:9', 'call_without_direction:call:10')
      ORDER BY fingerprint$$,
    $$VALUES ('call_without_direction:call:10'::text, 'fixed'::text),
             ('call_without_direction:call:9', 'fixed')$$,
    'as fixed'
);
-- At detection_probe_every_alerts open alerts every one is probed again: a fix resolves at once.
UPDATE guard.settings SET value = to_jsonb(open_now.alerts)
FROM (
    SELECT count(*) AS alerts FROM guard.alerts
    WHERE check_id = 'call_without_direction' AND status = 'open'
) AS open_now
WHERE key = 'detection_probe_every_alerts';
SET LOCAL session_replication_role = replica;
UPDATE calls SET direction = 'inbound'
WHERE id = 11;
SET LOCAL session_replication_role = origin;
SELECT results_eq(
    $$SELECT resolved FROM guard.detect() WHERE check_id = 'call_without_direction'$$,
    $$VALUES (1)$$,
    'with as many open alerts as detection_probe_every_alerts, the next pass resolves a fix'
);

SELECT * FROM finish();
ROLLBACK;
