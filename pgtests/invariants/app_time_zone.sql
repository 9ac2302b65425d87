-- The application's time zone (setting app_time_zone): a zone that is no IANA name is refused and
-- the setting keeps its value; guard.app_time reads a wall-clock time in the declared zone and
-- passes an instant through; guard.to_app_time writes an instant in a column's type; an existing
-- phantom booking written in wall-clock time is found whatever the session's TimeZone.
BEGIN;
SELECT plan(12);

-- a bad write is prevented
SELECT throws_ok(
    $$UPDATE guard.settings SET value = '"Mars/Olympus"' WHERE key = 'app_time_zone'$$,
    '22023', NULL, 'a zone name PostgreSQL does not know is refused'
);
SELECT throws_ok(
    $$UPDATE guard.settings SET value = '"+02"' WHERE key = 'app_time_zone'$$,
    '22023', NULL, 'a POSIX offset is refused (it has no summer time)'
);
SELECT is(guard.app_time_zone(), 'UTC', 'undeclared, the application''s zone is UTC');
SELECT lives_ok(
    $$UPDATE guard.settings SET value = '"Europe/Berlin"' WHERE key = 'app_time_zone'$$,
    'an IANA name is accepted'
);
SELECT is(guard.app_time_zone(), 'Europe/Berlin', 'the declared zone is read back');

-- reading and writing across the change to winter time (2026-10-25, 03:00 CEST -> 02:00 CET)
SET LOCAL TimeZone = 'America/New_York';
SELECT is(
    guard.app_time('2026-10-25 01:30'::timestamp, guard.app_time_zone()),
    '2026-10-24 23:30+00'::timestamptz,
    'a wall-clock time before the change is read in summer time'
);
SELECT is(
    guard.app_time('2026-10-25 03:30'::timestamp, guard.app_time_zone()),
    '2026-10-25 02:30+00'::timestamptz,
    'a wall-clock time after the change is read in winter time'
);
SELECT is(
    guard.app_time('2026-10-25 02:30+00'::timestamptz, guard.app_time_zone()),
    '2026-10-25 02:30+00'::timestamptz,
    'an instant is passed through'
);
SELECT is(
    guard.to_app_time('2026-10-25 02:30+00'::timestamptz, NULL::timestamp, guard.app_time_zone()),
    '2026-10-25 03:30'::timestamp,
    'an instant is written as the application''s wall-clock time'
);
SELECT is(
    guard.to_app_time('2026-10-25 02:30+00'::timestamptz, NULL::timestamptz, guard.app_time_zone()),
    '2026-10-25 02:30+00'::timestamptz,
    'an instant is written as itself into a timestamptz column'
);

-- an existing bad row is detected: the calls table here is timestamptz, so the declared zone
-- changes nothing, in any session zone
INSERT INTO companies (id, name) VALUES (1, 'A');
INSERT INTO calls (id, company_id, retell_call_id, direction, session_outcome, appointment_made, created_at, updated_at)
VALUES (1, 1, 'c1', 'inbound', 'appointment_booked', TRUE, now() - interval '10 minutes', now() - interval '10 minutes');
SELECT is(
    (SELECT array_agg(entity_id) FROM guard.check_booked_without_appointment),
    ARRAY[1::bigint],
    'a phantom booking is found from a New York session'
);
SET LOCAL TimeZone = 'Asia/Tokyo';
SELECT is(
    (SELECT array_agg(entity_id) FROM guard.check_booked_without_appointment),
    ARRAY[1::bigint],
    'and from a Tokyo session'
);

SELECT * FROM finish();
ROLLBACK;
