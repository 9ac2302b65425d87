-- I3, I4: the booking flags on calls are derived from the active appointments. Writes that
-- contradict them are judged when their transaction commits (the deferred constraint trigger
-- guard_flag_checks_at_commit): corrected (audited, alerted) or, in reject mode, refused.
-- `SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE` runs the pending checks now, as a commit
-- would (a pgTAP file never commits).
BEGIN;
SELECT plan(46);

INSERT INTO companies (id, name) VALUES (1, 'A');
ALTER TABLE calls ALTER COLUMN id RESTART WITH 10000;
ALTER TABLE appointments ALTER COLUMN id RESTART WITH 10000;
SELECT pgtap_setup.company_calls(1, 1, 20, 'c', 'information_only');

-- Single-row insert.
INSERT INTO appointments (id, company_id, call_id, source) VALUES (1, 1, 1, 'retell_webhook');
SELECT is(pgtap_setup.call_flags(1), 'true/linked/true/appointment_booked/false', 'an appointment books its call');

-- Cancelled and soft-deleted appointments are not active.
INSERT INTO appointments (id, company_id, call_id, status) VALUES (2, 1, 2, 'cancelled');
INSERT INTO appointments (id, company_id, call_id, deleted_at) VALUES (3, 1, 3, now());
SELECT is(pgtap_setup.call_flags(2), 'false/<NULL>/false/information_only/false', 'a cancelled appointment books nothing');
SELECT is(pgtap_setup.call_flags(3), 'false/<NULL>/false/information_only/false', 'a soft-deleted appointment books nothing');

-- Two appointments on one call: the flags stay until the last active one goes.
INSERT INTO appointments (id, company_id, call_id) VALUES (4, 1, 4), (5, 1, 4);
DELETE FROM appointments
WHERE id = 4;
SELECT is(pgtap_setup.call_flags(4), 'true/linked/true/appointment_booked/false', 'one of two appointments deleted: still booked');
UPDATE calls SET booking_confirmed = TRUE
WHERE id = 4;
DELETE FROM appointments
WHERE id = 5;
SELECT is(
    pgtap_setup.call_flags(4), 'false/unlinked/true/appointment_cancelled/false',
    'the last appointment deleted: no longer booked, outcome appointment_cancelled'
);
SELECT is((
    SELECT booking_confirmed FROM calls
    WHERE id = 4
), FALSE, 'and no longer confirmed');

-- Soft delete and undelete.
INSERT INTO appointments (id, company_id, call_id) VALUES (6, 1, 6);
UPDATE appointments SET deleted_at = now()
WHERE id = 6;
SELECT is(pgtap_setup.call_flags(6), 'false/unlinked/true/appointment_cancelled/false', 'soft delete unbooks the call');
UPDATE appointments SET deleted_at = NULL
WHERE id = 6;
SELECT is(pgtap_setup.call_flags(6), 'true/linked/true/appointment_booked/false', 'undelete books it again');

-- Cancel by status; a status change that keeps it active changes nothing.
INSERT INTO appointments (id, company_id, call_id) VALUES (7, 1, 7);
UPDATE appointments SET status = 'confirmed'
WHERE id = 7;
SELECT is(pgtap_setup.call_flags(7), 'true/linked/true/appointment_booked/false', 'confirmed is still active');
UPDATE appointments SET status = 'cancelled'
WHERE id = 7;
SELECT is(pgtap_setup.call_flags(7), 'false/unlinked/true/appointment_cancelled/false', 'cancelled unbooks the call');

-- Moving an appointment recomputes the old and the new call.
INSERT INTO appointments (id, company_id, call_id) VALUES (8, 1, 8);
UPDATE appointments SET call_id = 9
WHERE id = 8;
SELECT is(pgtap_setup.call_flags(8), 'false/unlinked/true/appointment_cancelled/false', 'old call of a moved appointment: unbooked');
SELECT is(pgtap_setup.call_flags(9), 'true/linked/true/appointment_booked/false', 'new call of a moved appointment: booked');

-- Bulk: 1000 appointments in one statement, then moved, then deleted, in one statement each.
SELECT pgtap_setup.company_calls(1, 1001, 3000, 'bulk');
INSERT INTO appointments (company_id, call_id) SELECT
    1,
    g
FROM generate_series(1001, 2000) AS g;
SELECT is((
    SELECT count(*)::int FROM calls
    WHERE appointment_made AND id BETWEEN 1001 AND 3000
), 1000, 'bulk insert books 1000 calls');
UPDATE appointments SET call_id = call_id + 1000
WHERE call_id BETWEEN 1001 AND 2000;
SELECT results_eq(
    $$SELECT id > 2000, appointment_made, count(*)::int FROM calls WHERE id BETWEEN 1001 AND 3000
      GROUP BY 1, 2 ORDER BY 1$$,
    $$VALUES (FALSE, FALSE, 1000), (TRUE, TRUE, 1000)$$,
    'a bulk move unbooks the 1000 old calls and books the 1000 new ones'
);
DELETE FROM appointments
WHERE call_id BETWEEN 2001 AND 3000;
SELECT is((
    SELECT count(*)::int FROM calls
    WHERE appointment_made AND id BETWEEN 1001 AND 3000
), 0, 'a bulk delete unbooks them');
SELECT is((
    SELECT count(*)::int FROM calls
    WHERE session_outcome = 'appointment_cancelled' AND id BETWEEN 2001 AND 3000
), 1000, 'and their booked outcome becomes appointment_cancelled: they lost their appointments');

-- A booked outcome without an appointment is allowed (grace period): nothing is corrected.
UPDATE calls SET session_outcome = 'appointment_booked'
WHERE id = 10;
SELECT is(pgtap_setup.call_flags(10), 'false/<NULL>/false/appointment_booked/false', 'booked outcome inside the grace period stands');
SELECT is((SELECT count(*)::int FROM guard.correction_audit), 0, 'no corrections so far: derivation is not correction');

-- A transaction may write the call's flags before the appointment that makes them true: nothing
-- is corrected, audited or alerted at commit.
INSERT INTO calls (id, company_id, retell_call_id, session_outcome)
VALUES (23, 1, 'flags-then-books', 'information_only');
UPDATE calls SET
    appointment_made = TRUE,
    appointment_link_status = 'linked',
    appointment_linked_at = now(),
    session_outcome = 'appointment_booked'
WHERE id = 23;
SELECT is(pgtap_setup.call_flags(23), 'true/linked/true/appointment_booked/false', 'the flags written first stand until commit');
INSERT INTO appointments (company_id, call_id) VALUES (1, 23);
INSERT INTO calls (
    id, company_id, retell_call_id, appointment_made, appointment_link_status,
    appointment_linked_at, session_outcome
)
VALUES (22, 1, 'claims-then-books', TRUE, 'linked', now(), 'appointment_booked');
INSERT INTO appointments (company_id, call_id) VALUES (1, 22);
SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE;
SET CONSTRAINTS guard.guard_flag_checks_at_commit DEFERRED;
SELECT is(
    pgtap_setup.call_flags(23) || ' ' || pgtap_setup.call_flags(22),
    'true/linked/true/appointment_booked/false true/linked/true/appointment_booked/false',
    'at commit, flags written before their appointment (an update, an insert) are kept'
);
SELECT is(
    (SELECT count(*)::int FROM guard.correction_audit) + (SELECT count(*)::int FROM guard.alerts),
    0,
    'a transient state is neither audited nor alerted'
);
SELECT is((SELECT count(*)::int FROM guard.flag_checks_at_commit), 0, 'the commit took its pending checks');

-- Application writes that still contradict the appointments at commit are corrected, audited and
-- alerted.
UPDATE calls SET appointment_made = FALSE, session_outcome = 'no_availability'
WHERE id = 1;
SELECT is(pgtap_setup.call_flags(1), 'false/linked/true/no_availability/false', 'a contradicting write stands until commit');
SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE;
SELECT is(pgtap_setup.call_flags(1), 'true/linked/true/appointment_booked/false', 'at commit, made = false on a booked call is corrected');
-- From here on every statement's checks run at its end (IMMEDIATE), as if each were committed.
SELECT results_eq(
    $$SELECT rule_id, before ->> 'appointment_made', after ->> 'appointment_made',
             before ->> 'session_outcome', after ->> 'session_outcome'
      FROM guard.correction_audit WHERE entity_id = 1$$,
    $$VALUES ('I3_appointment_flags', 'false', 'true', 'no_availability', 'appointment_booked')$$,
    'the correction is audited with before and after'
);
UPDATE calls SET booking_failed = TRUE
WHERE id = 1;
SELECT is(pgtap_setup.call_flags(1), 'true/linked/true/appointment_booked/false', 'booking_failed on a booked call is corrected');
UPDATE calls SET appointment_made = TRUE
WHERE id = 11;
SELECT is(pgtap_setup.call_flags(11), 'false/<NULL>/false/information_only/false', 'a phantom made = true is corrected');
INSERT INTO calls (
    id, company_id, retell_call_id, appointment_made, appointment_link_status,
    appointment_linked_at, session_outcome
)
VALUES (21, 1, 'claims', TRUE, 'linked', now(), 'appointment_booked');
SELECT is(pgtap_setup.call_flags(21), 'false/unlinked/true/appointment_booked/false', 'a new call claiming a booking is corrected');
UPDATE calls SET appointment_made = TRUE
WHERE id BETWEEN 13 AND 20;
SELECT results_eq(
    $$SELECT occurrences, (details ->> 'corrected_calls')::int FROM guard.alerts
      WHERE check_id = 'flags_corrected_on_write' AND status = 'open'$$,
    $$VALUES (12, 1)$$,
    'one alert per company; under IMMEDIATE each call of a statement is judged on its own, one bump each'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.correction_audit
        WHERE entity_id BETWEEN 13 AND 20
    ), 8,
    'a bulk contradicting write: one audit row per corrected call'
);

-- Reject mode refuses the write at commit instead; a disabled rule lets it stand.
UPDATE guard.rules SET mode = 'reject'
WHERE id = 'I3_appointment_flags';
SELECT throws_ok(
    $$UPDATE calls SET appointment_made = FALSE WHERE id = 1$$,
    '23514',
    'booking flags of 1 call(s) contradict their appointments',
    'reject mode refuses a contradicting write'
);
SET CONSTRAINTS guard.guard_flag_checks_at_commit DEFERRED;
UPDATE calls SET appointment_made = FALSE
WHERE id = 1;
SELECT throws_ok(
    $$SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE$$,
    '23514',
    'booking flags of 1 call(s) contradict their appointments',
    'reject mode: the commit of a transaction that leaves a contradiction fails'
);
UPDATE calls SET appointment_made = TRUE
WHERE id = 1;
SELECT lives_ok(
    $$SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE$$,
    'reject mode: a transaction that set the flags right again commits'
);
SELECT lives_ok(
    $$UPDATE calls SET session_outcome = 'appointment_booked' WHERE id = 13$$,
    'reject mode lets a consistent write through'
);
-- A booking claimed inside its grace period (outcome booked, the appointment not written yet)
-- is no contradiction: a transaction that wrote made = TRUE and took it back commits.
SET CONSTRAINTS guard.guard_flag_checks_at_commit DEFERRED;
UPDATE calls SET appointment_made = TRUE, session_outcome = 'appointment_booked'
WHERE id = 12;
UPDATE calls SET appointment_made = FALSE
WHERE id = 12;
SELECT lives_ok(
    $$SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE$$,
    'reject mode: a transaction that leaves a booking claimed inside its grace period commits'
);
UPDATE guard.rules SET mode = 'correct', enabled = FALSE
WHERE id = 'I3_appointment_flags';
UPDATE calls SET appointment_made = TRUE
WHERE id = 14;
SELECT is((
    SELECT appointment_made FROM calls
    WHERE id = 14
), TRUE, 'a disabled rule lets the write stand');
UPDATE guard.rules SET enabled = TRUE
WHERE id = 'I3_appointment_flags';

-- An existing bad row (a phantom booking loaded with triggers bypassed) is corrected by the
-- reconciler, audited.
SET LOCAL session_replication_role = replica;
INSERT INTO calls (
    id, company_id, retell_call_id, direction, customer_link_status,
    appointment_made, appointment_link_status, appointment_linked_at, session_outcome
)
VALUES (900, 1, 'legacy', 'inbound', 'unlinked', TRUE, 'linked', now(), 'appointment_booked');
SET LOCAL session_replication_role = origin;
SELECT results_eq(
    $$SELECT corrected FROM guard.reconcile_call_batch(900, 901)
      WHERE rule_name = 'I3_appointment_flags'$$,
    ARRAY[1],
    'the reconciler unbooks an existing phantom booking'
);

-- A field next to the checked ones: a call whose other flags already say unbooked but which is
-- still confirmed loses its last appointment; booking_confirmed alone differs, and is derived.
SET LOCAL session_replication_role = replica;
INSERT INTO calls (
    id, company_id, retell_call_id, direction, customer_link_status,
    appointment_made, appointment_link_status, session_outcome, booking_confirmed
)
VALUES (901, 1, 'confirmed-only', 'inbound', 'unlinked', FALSE, 'unlinked', 'information_only', TRUE);
INSERT INTO appointments (id, company_id, call_id) VALUES (901, 1, 901);
SET LOCAL session_replication_role = origin;
UPDATE appointments SET status = 'cancelled'
WHERE id = 901;
SELECT is((
    SELECT booking_confirmed FROM calls
    WHERE id = 901
), FALSE, 'a call that lost its last appointment is no longer confirmed, whatever its other flags');

-- The link time of a booking is when it was first linked: a write that keeps an older link time
-- on a booked call agrees with the appointments (nothing corrected, the time kept).
SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE;
INSERT INTO calls (id, company_id, retell_call_id, session_outcome)
VALUES (30, 1, 'linked-long-ago', 'information_only'), (32, 1, 'claims-in-grace', 'information_only'),
(33, 1, 'takes-cancelled', 'information_only');
INSERT INTO appointments (company_id, call_id) VALUES (1, 30);
UPDATE calls SET appointment_linked_at = '2026-01-01 10:00+00'
WHERE id = 30;
SELECT is(
    (
        SELECT appointment_linked_at FROM calls
        WHERE id = 30
    ),
    '2026-01-01 10:00+00'::timestamptz,
    'a booked call keeps the link time written for it'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.correction_audit
        WHERE entity_id = 30
    ),
    0,
    'an older link time on a booked call is no contradiction'
);

-- A new call claiming a linked appointment (without made) is checked at commit too.
INSERT INTO calls (
    id, company_id, retell_call_id, appointment_link_status, appointment_linked_at, session_outcome
)
VALUES (31, 1, 'claims-link', 'linked', now(), 'information_only');
SELECT is(pgtap_setup.call_flags(31), 'false/unlinked/true/information_only/false', 'a new call claiming only a link is corrected');

-- Moving a cancelled appointment away takes nothing from its call: a booking claimed inside its
-- grace period (outcome booked, confirmed) stands.
INSERT INTO appointments (id, company_id, call_id, status) VALUES (40, 1, 32, 'cancelled');
UPDATE calls SET session_outcome = 'appointment_booked', booking_confirmed = TRUE
WHERE id = 32;
UPDATE appointments SET call_id = 33
WHERE id = 40;
SELECT is(
    pgtap_setup.call_flags(32), 'false/<NULL>/false/appointment_booked/false',
    'a cancelled appointment moved away leaves the claimed outcome'
);
SELECT is((
    SELECT booking_confirmed FROM calls
    WHERE id = 32
), TRUE, 'and the confirmation');

-- creation_failed (a rolled-back booking, guard.rollback_booking) is kept while the call has no
-- active appointment, whoever writes it, and gives way to linked when one arrives.
INSERT INTO calls (id, company_id, retell_call_id) VALUES (34, 1, 'rolled-back');
UPDATE calls SET
    appointment_link_status = 'creation_failed', session_outcome = 'creation_failed',
    booking_failed = TRUE
WHERE id = 34;
SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE;
SET CONSTRAINTS guard.guard_flag_checks_at_commit DEFERRED;
SELECT is(
    pgtap_setup.call_flags(34), 'false/creation_failed/false/creation_failed/true',
    'a failed creation written without an appointment is no contradiction'
);
INSERT INTO appointments (id, company_id, call_id, status) VALUES (41, 1, 34, 'cancelled');
DELETE FROM appointments
WHERE id = 41;
SELECT is(
    pgtap_setup.call_flags(34), 'false/creation_failed/false/creation_failed/true',
    'deriving the call again keeps creation_failed'
);
INSERT INTO appointments (id, company_id, call_id) VALUES (42, 1, 34);
SELECT is(
    pgtap_setup.call_flags(34), 'true/linked/true/appointment_booked/false',
    'a booking that then succeeds links the call'
);

SELECT * FROM finish();
ROLLBACK;
