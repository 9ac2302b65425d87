-- I3 for UPDATEs of many appointments at once. guard.note_appointment_change notes the calls of
-- each changed row for the statement's trigger; past 4,000 characters of notes (some 500 calls)
-- the trigger derives from its transition tables instead. Each statement here changes 700 rows
-- of 700 calls (about 3,500 characters of notes and more), so it takes that path, and every call
-- must end as a one-row change would leave it: a bulk cancel unbooks, a bulk move of active
-- appointments unbooks the calls they leave and books the calls they reach, and moving
-- cancelled appointments books and unbooks nothing. The small statements (the notes) are in
-- invariants/i3_booking_flags.sql.
BEGIN;
SELECT plan(6);

INSERT INTO companies (id, name) VALUES (1, 'A');
INSERT INTO calls (id, company_id, retell_call_id, session_outcome)
SELECT
    g,
    1,
    'c' || g,
    'information_only'
FROM generate_series(1, 3000) AS g;
-- 1-700 booked (appointments 1-700); 1001-1700 booked (1001-1700); 2001-2700 have a cancelled
-- appointment each (2001-2700); 2301-3000 have none yet (the bulk moves' destinations: 2301-2700
-- overlap the cancelled ones' calls on purpose).
INSERT INTO appointments (id, company_id, call_id, status)
SELECT
    g AS id,
    1 AS company_id,
    g AS call_id,
    CASE WHEN g > 2000 THEN 'cancelled' ELSE 'scheduled' END AS status
FROM generate_series(1, 3000) AS g
WHERE g <= 700 OR g BETWEEN 1001 AND 1700 OR g BETWEEN 2001 AND 2700;

SELECT results_eq(
    $$SELECT count(*) FILTER (WHERE appointment_made), count(*) FILTER (WHERE NOT appointment_made)
      FROM calls$$,
    $$VALUES (1400::bigint, 1600::bigint)$$,
    'the 1,400 calls with an active appointment are booked'
);

UPDATE appointments SET status = 'cancelled'
WHERE id <= 700;
SELECT results_eq(
    $$SELECT count(*) FROM calls
      WHERE id <= 700 AND NOT appointment_made AND session_outcome = 'appointment_cancelled'
        AND appointment_link_status = 'unlinked'$$,
    $$VALUES (700::bigint)$$,
    'a bulk cancel unbooks all 700 calls, their booked outcome now cancelled'
);

-- 700 active appointments move from calls 1001-1700 to calls 2301-3000
UPDATE appointments SET call_id = call_id + 1300
WHERE id BETWEEN 1001 AND 1700;
SELECT results_eq(
    $$SELECT
        count(*) FILTER (WHERE id BETWEEN 1001 AND 1700 AND NOT appointment_made),
        count(*) FILTER (WHERE id BETWEEN 2301 AND 3000 AND appointment_made)
      FROM calls$$,
    $$VALUES (700::bigint, 700::bigint)$$,
    'a bulk move of active appointments unbooks the calls they leave and books the ones they reach'
);

-- Calls 2301-2700 now have an active appointment (moved in) and a cancelled one; 2001-2300 only
-- a cancelled one, and their booked outcome (a claim inside its grace period, detection's
-- business) is theirs to keep. The cancelled appointments (2001-2700) move to calls 1-700,
-- which have none active.
UPDATE calls SET session_outcome = 'appointment_booked', booking_confirmed = TRUE
WHERE id BETWEEN 2001 AND 3000;
UPDATE appointments SET call_id = call_id - 2000
WHERE id BETWEEN 2001 AND 2700;
SELECT results_eq(
    $$SELECT
        count(*) FILTER (WHERE id BETWEEN 2301 AND 2700 AND appointment_made AND booking_confirmed
                         AND session_outcome = 'appointment_booked'),
        count(*) FILTER (WHERE id BETWEEN 2001 AND 2300 AND booking_confirmed
                         AND session_outcome = 'appointment_booked'),
        count(*) FILTER (WHERE id BETWEEN 1 AND 700 AND appointment_made)
      FROM calls$$,
    $$VALUES (400::bigint, 300::bigint, 0::bigint)$$,
    'moving cancelled appointments away loses the calls nothing, and books nothing where they go'
);

-- Soft-delete every active appointment at once (those of calls 2301-3000): every call is
-- unbooked, and those that lost one are no longer confirmed.
UPDATE appointments SET deleted_at = now()
WHERE deleted_at IS NULL AND status <> 'cancelled';
SELECT results_eq(
    $$SELECT
        count(*) FILTER (WHERE appointment_made),
        count(*) FILTER (WHERE id BETWEEN 2301 AND 3000 AND booking_confirmed)
      FROM calls$$,
    $$VALUES (0::bigint, 0::bigint)$$,
    'a bulk soft delete unbooks every call, and those that lost one are no longer confirmed'
);

SELECT is_empty(
    $$SELECT FROM guard.check_flags_contradict_appointments$$,
    'and no call''s flags contradict its appointments'
);

SELECT * FROM finish();
ROLLBACK;
