-- I3: the commit-time check (guard.check_flags_at_commit) judges every call whose flags the
-- transaction wrote against what its appointments say when the transaction commits, in the one
-- statement that takes the pending checks: a call made true later in the transaction passes,
-- and neither an appointment inserted in a subtransaction that rolled back, nor another
-- company's appointment, nor a cancelled one makes a claim true. A call deleted after its write
-- is no contradiction. And the write check (guard.check_flag_write) takes a write that only
-- clears appointment_linked_at of an unbooked call (the application's unbook after a cancel) for
-- a restatement: the rule reads linked_at only while an appointment is active, and such a call
-- claims none. The same clearing on a booked call, or with made written too, is judged.
BEGIN;
SELECT plan(13);

INSERT INTO companies (id, name) VALUES (1301, 'A'), (1302, 'B');
SELECT pgtap_setup.company_calls(1301, 13001, 13008, 'k', 'information_only');
-- 13005: another company's appointment (adopted data)
SELECT pgtap_setup.loaded_appointment(13005, 1302, 13005, 'uid-k5');

-- Every call but the last three claims a booking first, in one statement.
UPDATE calls
SET
    session_outcome = 'appointment_booked',
    appointment_made = TRUE,
    appointment_link_status = 'linked',
    appointment_linked_at = now()
WHERE id BETWEEN 13001 AND 13005;
-- 13001: then its appointment; 13002: its appointment in a subtransaction that rolls back;
-- 13003: two appointments, one of them cancelled; 13004: deleted; 13005: another company's only
INSERT INTO appointments (id, company_id, call_id, source) VALUES (13001, 1301, 13001, 'retell_webhook');
SELECT throws_ok(
    $q$DO $do$ BEGIN
        INSERT INTO appointments (id, company_id, call_id, source)
        VALUES (13002, 1301, 13002, 'retell_webhook');
        RAISE EXCEPTION 'the calendar refused';
    END $do$ $q$,
    'P0001', 'the calendar refused',
    'the appointment of 13002 is rolled back with its subtransaction'
);
INSERT INTO appointments (id, company_id, call_id, source, status)
VALUES (13003, 1301, 13003, 'retell_webhook', 'scheduled'), (13004, 1301, 13003, 'retell_webhook', 'scheduled');
UPDATE appointments SET status = 'cancelled'
WHERE id = 13003;
DELETE FROM calls
WHERE id = 13004;

SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE;
SET CONSTRAINTS guard.guard_flag_checks_at_commit DEFERRED;

SELECT is(
    pgtap_setup.call_flags(13001), 'true/linked/true/appointment_booked/false',
    'flags made true by a later appointment pass'
);
SELECT is(
    pgtap_setup.call_flags(13002), 'false/unlinked/true/appointment_booked/false',
    'a claim whose appointment was rolled back with a subtransaction is corrected'
);
SELECT is(
    pgtap_setup.call_flags(13003), 'true/linked/true/appointment_booked/false',
    'a call with a second, active appointment keeps its flags'
);
SELECT is(
    pgtap_setup.call_flags(13005), 'false/unlinked/true/appointment_booked/false',
    'another company''s appointment books nothing: corrected'
);
SELECT results_eq(
    $$SELECT entity_id FROM guard.correction_audit WHERE entity_type = 'call' AND entity_id BETWEEN 13001 AND 13008 ORDER BY entity_id$$,
    ARRAY[13002::bigint, 13005::bigint],
    'exactly the two contradictions are corrected and audited (not the deleted call)'
);
SELECT is_empty('SELECT FROM guard.flag_checks_at_commit', 'the pending checks are taken');

-- 13006: unbooked by a cancel (its flags derived), then the application's unbook write that
-- clears linked_at; 13007: booked, linked_at cleared; 13008: unbooked, made and linked_at written
INSERT INTO appointments (id, company_id, call_id, source)
VALUES (13006, 1301, 13006, 'retell_webhook'), (13007, 1301, 13007, 'retell_webhook');
UPDATE appointments SET status = 'cancelled'
WHERE id = 13006;
DELETE FROM guard.detection_queue;
UPDATE calls
SET
    session_outcome = 'appointment_cancelled',
    appointment_made = FALSE,
    appointment_link_status = 'unlinked',
    appointment_linked_at = NULL
WHERE id = 13006;
SELECT is_empty('SELECT FROM guard.flag_checks_at_commit', 'the unbook write is not recorded');
SELECT is_empty(
    'SELECT FROM guard.detection_queue',
    'nor queued: it changes nothing detection or the rule reads of a call without a booking'
);
UPDATE calls SET appointment_linked_at = NULL
WHERE id = 13007;
UPDATE calls SET appointment_made = TRUE, appointment_linked_at = NULL
WHERE id = 13008;
SELECT results_eq(
    'SELECT c FROM guard.flag_checks_at_commit, unnest(call_ids) AS c ORDER BY c',
    ARRAY[13007::bigint, 13008::bigint],
    'clearing linked_at of a booked call, or with made written, is recorded for commit'
);
SELECT results_eq(
    'SELECT call_id FROM guard.detection_queue',
    ARRAY[13008::bigint],
    'the claim without an appointment is queued for detection'
);
SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE;
SELECT is(
    pgtap_setup.call_flags(13007), 'true/linked/true/appointment_booked/false',
    'the booked call gets its link time back at commit'
);
SELECT is(
    pgtap_setup.call_flags(13008), 'false/<NULL>/false/information_only/false',
    'the claim is corrected at commit'
);

SELECT * FROM finish();
ROLLBACK;
