-- guard.activity_against_usual for a company with no history: its usual number is 0, not
-- unknown. With monitor_min_expected at 0 (a DBA who wants every company watched) a company whose
-- first calls arrived this hour is returned with a usual of 0.00; with the shipped minimum it is
-- not. The last arrival it reports is the company's own, in either stream, not a later one of
-- another company.
BEGIN;
SELECT plan(4);

INSERT INTO companies (id, name) VALUES (891, 'new this hour'), (892, 'busier');
UPDATE guard.settings SET value = '60'
WHERE key = 'monitor_window_minutes';
UPDATE guard.settings SET value = '0'
WHERE key = 'monitor_min_expected';
INSERT INTO calls (company_id, retell_call_id, created_at)
SELECT
    891,
    'first' || n,
    now() - interval '10 min'
FROM generate_series(1, 3) AS n;

INSERT INTO calls (company_id, retell_call_id, created_at)
VALUES (892, 'later', now() - interval '1 min');
INSERT INTO appointments (company_id, created_at)
VALUES (891, now() - interval '20 min'), (892, now() - interval '2 min');

SELECT results_eq(
    $$SELECT company_id, recent, usual FROM guard.activity_against_usual('calls')
      WHERE company_id = 891$$,
    $$VALUES (891::bigint, 3::bigint, 0.00::numeric)$$,
    'activity_against_usual: a company without earlier weeks has a usual of 0, returned at a '
    'minimum of 0'
);
SELECT is(
    (
        SELECT last_at FROM guard.activity_against_usual('calls')
        WHERE company_id = 891
    ),
    now() - interval '10 min',
    'activity_against_usual(calls): the last call is the company''s own'
);
SELECT is(
    (
        SELECT last_at FROM guard.activity_against_usual('appointments')
        WHERE company_id = 891
    ),
    now() - interval '20 min',
    'activity_against_usual(appointments): the last appointment is the company''s own'
);

UPDATE guard.settings SET value = '5'
WHERE key = 'monitor_min_expected';
SELECT is_empty(
    $$SELECT 1 FROM guard.activity_against_usual('calls') WHERE company_id = 891$$,
    'activity_against_usual: at the shipped minimum the same company is a quiet one'
);

SELECT * FROM finish();
ROLLBACK;
