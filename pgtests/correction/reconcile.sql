-- guard.reconcile(): every kind of correction, what goes to review instead, dry run, the cap,
-- and a second run with nothing left to do. No row is lost.
BEGIN;
SELECT plan(17);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
SELECT pgtap_setup.legacy_load();
INSERT INTO calls (
    id, company_id, retell_call_id, direction, customer_link_status, session_outcome,
    appointment_made, appointment_link_status, booking_id, created_at, updated_at
) VALUES
-- 1: no direction
(1, 1, 'c1', NULL, 'unlinked', 'information_only', FALSE, NULL, NULL, now() - interval '1 h', now() - interval '1 h'),
-- 2: phantom whose appointment exists as an orphan with the same uid: recovered by a link
(2, 1, 'c2', 'inbound', 'unlinked', 'appointment_booked', TRUE, 'linked', 'bk2', now() - interval '1 h', now() - interval '1 h'),
-- 3: phantom with nothing to recover: rolled back and queued
(3, 1, 'c3', 'inbound', 'unlinked', 'appointment_booked', TRUE, 'linked', 'bk3', now() - interval '1 h', now() - interval '1 h'),
-- 4: flags deny its appointment
(4, 1, 'c4', 'inbound', 'unlinked', 'no_availability', FALSE, NULL, 'bk4', now() - interval '1 h', now() - interval '1 h'),
-- 5, 6: two calls with the same uid (ambiguous); 7: the uid's only call is in company 2
(5, 1, 'c5', 'inbound', 'unlinked', 'information_only', FALSE, NULL, 'bk-twice', now() - interval '1 h', now() - interval '1 h'),
(6, 1, 'c6', 'inbound', 'unlinked', 'information_only', FALSE, NULL, 'bk-twice', now() - interval '1 h', now() - interval '1 h'),
(7, 2, 'c7', 'inbound', 'unlinked', 'information_only', FALSE, NULL, 'bk-other', now() - interval '1 h', now() - interval '1 h'),
-- 8: company 2's call that company 1's appointment is linked to
(8, 2, 'c8', 'inbound', 'unlinked', 'information_only', FALSE, NULL, NULL, now() - interval '1 h', now() - interval '1 h');
INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id, created_at) VALUES
(2, 1, NULL, 'retell_webhook', 'bk2', now() - interval '1 h'),
(4, 1, 4, 'retell_webhook', 'bk4', now() - interval '1 h'),
(5, 1, NULL, 'retell_webhook', 'bk-twice', now() - interval '1 h'),
(7, 1, NULL, 'retell_webhook', 'bk-other', now() - interval '1 h'),
(8, 1, 8, 'retell_webhook', 'bk-x', now() - interval '1 h'),
(9, 1, NULL, 'retell_webhook', 'bk-nowhere', now() - interval '1 h');
SET LOCAL session_replication_role = origin;

CREATE TEMPORARY TABLE before_rows AS
SELECT
    (SELECT md5(string_agg(c::text, ',' ORDER BY c.id)) FROM calls AS c) AS calls_md5,
    (SELECT md5(string_agg(a::text, ',' ORDER BY a.id)) FROM appointments AS a) AS appointments_md5;

SELECT results_eq(
    'SELECT action, affected FROM guard.reconcile(dry_run => TRUE)',
    $$VALUES ('booking_outcome_unknown', 0), ('close_reviewed_attempt', 0), ('fill_direction', 1),
             ('link_orphan_appointment', 1), ('rollback_phantom_booking', 1),
             ('correct_flags', 1), ('review_orphan_appointment', 2), ('review_cross_tenant', 2)$$,
    'a dry run counts each kind'
);
SELECT results_eq(
    $$SELECT (SELECT md5(string_agg(c::text, ',' ORDER BY c.id)) FROM calls AS c),
             (SELECT md5(string_agg(a::text, ',' ORDER BY a.id)) FROM appointments AS a),
             (SELECT count(*)::int FROM guard.review_items), (SELECT count(*)::int FROM guard.correction_audit)$$,
    $$SELECT calls_md5, appointments_md5, 0, 0 FROM before_rows$$,
    'and changes nothing'
);

SELECT results_eq(
    'SELECT action, affected FROM guard.reconcile()',
    $$VALUES ('booking_outcome_unknown', 0), ('close_reviewed_attempt', 0), ('fill_direction', 1),
             ('link_orphan_appointment', 1), ('rollback_phantom_booking', 1),
             ('correct_flags', 1), ('review_orphan_appointment', 2), ('review_cross_tenant', 2)$$,
    'reconcile does what the dry run said'
);
SELECT is((
    SELECT direction FROM calls
    WHERE id = 1
), 'inbound', 'a missing direction is filled');
SELECT results_eq(
    $$SELECT a.call_id, c.appointment_made, c.session_outcome
      FROM appointments AS a JOIN calls AS c ON c.id = a.call_id WHERE a.id = 2$$,
    $$VALUES (2::bigint, TRUE, 'appointment_booked')$$,
    'the orphan is linked to the only call with its uid, which is booked again: recovered'
);
SELECT results_eq(
    $$SELECT session_outcome, appointment_made, booking_failed, requires_manual_processing
      FROM calls WHERE id = 3$$,
    $$VALUES ('creation_failed', FALSE, TRUE, TRUE)$$,
    'a phantom with nothing to recover is rolled back'
);
SELECT results_eq(
    $$SELECT reason, priority::int, status FROM guard.review_items WHERE call_id = 3$$,
    $$VALUES ('calendar_booking_failure', 2, 'open')$$,
    'and queued for review with priority 2'
);
SELECT results_eq(
    $$SELECT appointment_made, session_outcome FROM calls WHERE id = 4$$,
    $$VALUES (TRUE, 'appointment_booked')$$,
    'flags that denied the appointment are derived again'
);
SELECT is(
    (
        SELECT array_agg(call_id ORDER BY id) FROM appointments
        WHERE id IN (5, 7, 9)
    )::text,
    '{NULL,NULL,NULL}',
    'ambiguous, cross-tenant and unmatched orphans are not linked: never guessed'
);
SELECT results_eq(
    $$SELECT appointment_id, details ->> 'problem' FROM guard.review_items
      WHERE appointment_id IS NOT NULL ORDER BY appointment_id$$,
    $$VALUES (5::bigint, 'orphaned_voice_appointment'), (7::bigint, 'cross_tenant_candidate'),
             (8::bigint, 'cross_tenant_link'), (9::bigint, 'orphaned_voice_appointment')$$,
    'they are queued for a person, as is the cross-tenant link'
);
SELECT is((
    SELECT call_id FROM appointments
    WHERE id = 8
), 8::bigint, 'the cross-tenant link is left as it is');
SELECT results_eq(
    $$SELECT rule_id, count(*)::int FROM guard.correction_audit GROUP BY rule_id ORDER BY rule_id$$,
    $$VALUES ('I1_call_direction', 1), ('I3_appointment_flags', 1), ('I4_booked_outcome', 1),
             ('I6_voice_appointment_call', 1)$$,
    'every change is audited, under the rule id of the invariant it restores'
);
SELECT results_eq(
    $$SELECT (SELECT count(*)::int FROM calls), (SELECT count(*)::int FROM appointments)$$,
    $$VALUES (8, 6)$$,
    'no row is lost'
);

SELECT results_eq(
    'SELECT sum(affected)::int FROM guard.reconcile()',
    ARRAY[0],
    'a second run finds nothing left to do and queues nothing twice'
);
SELECT is((SELECT count(*)::int FROM guard.review_items), 5, 'still five review items');

-- The cap: at most reconcile_batch_limit rows per run.
SET LOCAL session_replication_role = replica;
INSERT INTO calls (company_id, retell_call_id, direction, customer_link_status, created_at)
SELECT
    1,
    'nodir' || g,
    NULL,
    'unlinked',
    now()
FROM generate_series(1, 5) AS g;
SET LOCAL session_replication_role = origin;
UPDATE guard.settings SET value = '3'
WHERE key = 'reconcile_batch_limit';
SELECT results_eq(
    $$SELECT affected FROM guard.reconcile() WHERE action = 'fill_direction'$$, ARRAY[3],
    'a run stops at reconcile_batch_limit'
);
SELECT results_eq(
    $$SELECT affected FROM guard.reconcile() WHERE action = 'fill_direction'$$, ARRAY[2],
    'the next run continues'
);

SELECT * FROM finish();
ROLLBACK;
