-- Edges that a sample of generated mutants found untested (docs/testing.md, "Mutation testing"):
-- the calendar comparison's window at both ends; guard.review_sweep resolving an unlinked
-- appointment's item once it is linked to a call of its own company (and not while it is linked
-- to none); an own check that reads a DBA's view
-- in schema guard that runs with its owner's rights; a minimum severity with nothing below it;
-- a pass whose own check fails leaves the caller's lock_timeout as it found it.
BEGIN;
SELECT plan(11);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
INSERT INTO calls (id, company_id, retell_call_id) VALUES
(7201, 1, 'c7201'), (7202, 1, 'c7202'), (7203, 1, 'c7203'), (7204, 1, 'c7204');

-- The calendar's window [since, until): an appointment starting exactly at since is compared,
-- one starting exactly at until is not.
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, starts_at, created_at) VALUES
(7201, 1, 7201, 'uid-at-since', '2031-01-01 00:00Z', now() - interval '1 day'),
(7202, 1, 7202, 'uid-at-until', '2031-02-01 00:00Z', now() - interval '1 day');
SELECT results_eq(
    $$SELECT appointment_id, queued FROM guard.queue_missing_in_calendar(
        1, '2031-01-01 00:00Z', '2031-02-01 00:00Z', now(), '{}')$$,
    $$VALUES (7201::bigint, TRUE)$$,
    'queue_missing_in_calendar: an appointment at the window''s start is compared, one at its end is not'
);

-- guard.review_sweep: an item about an appointment linked to no call stays open; linked to a
-- call of its own company, the problem is gone and the item is resolved.
INSERT INTO appointments (id, company_id, call_id, source, status) VALUES
(7203, 1, NULL, 'manual', 'scheduled');
SELECT guard.enqueue_review(1, NULL, 7203, 'other');
SELECT is(guard.review_sweep(), 0, 'review_sweep: an appointment linked to no call keeps its item open');
UPDATE appointments SET call_id = 7203
WHERE id = 7203;
SELECT is(guard.review_sweep(), 1, 'review_sweep: linked to a call of its own company, its item is resolved');
SELECT is(
    (
        SELECT status FROM guard.review_items
        WHERE appointment_id = 7203
    ), 'resolved',
    'the item of that appointment'
);

-- An own check that reads a DBA's view in schema guard running with its owner's rights is
-- refused, as one in another schema is; one that reads such a view Booking Guard ships (it
-- filters by the reader's companies itself) is not.
INSERT INTO guard.rules (id, severity, description, remedy)
VALUES ('edge_rule', 'low', 'A rule of the DBA''s own.', 'report');
CREATE VIEW guard.dba_appointments AS
SELECT
    a.id,
    a.company_id,
    a.call_id,
    a.created_at
FROM public.appointments AS a;
CREATE VIEW guard.check_reads_dba_view WITH (security_invoker = TRUE) AS
SELECT
    'reads_dba_view'::text AS check_id,
    d.company_id,
    'appointment'::text AS entity_type,
    d.id AS entity_id,
    d.call_id,
    'low'::text AS severity,
    d.created_at AS observed_at,
    '{}'::jsonb AS detail,
    'edge_rule'::text AS rule_id
FROM guard.dba_appointments AS d;
SELECT throws_like(
    $$SELECT guard.register_check('reads_dba_view', 'edge_rule', 'check_reads_dba_view', 'low', 'x')$$,
    '%reads guard.dba_appointments, a view that runs with its owner''s rights%',
    'register_check: a DBA''s view in schema guard without security_invoker is named and refused'
);
-- registered before the rule, or altered since: guard.own_check_bypass (`guard db verify`)
ALTER VIEW guard.check_reads_dba_view OWNER TO guard_owner;
SELECT matches(
    guard.own_check_bypass('guard.check_reads_dba_view'),
    'reads guard\.dba_appointments, a view that runs with its owner''s rights',
    'own_check_bypass: an existing own check that reads it is named'
);
CREATE VIEW guard.check_reads_shipped_view WITH (security_invoker = TRUE) AS
SELECT
    'reads_shipped_view'::text AS check_id,
    r.company_id,
    'alert'::text AS entity_type,
    r.id AS entity_id,
    NULL::bigint AS call_id,
    'low'::text AS severity,
    r.first_seen_at AS observed_at,
    '{}'::jsonb AS detail,
    'edge_rule'::text AS rule_id
FROM guard.alerts_report AS r;
SELECT lives_ok(
    $$SELECT guard.register_check('reads_shipped_view', 'edge_rule', 'check_reads_shipped_view', 'low', 'x')$$,
    'register_check: a view Booking Guard ships that runs with its owner''s rights may be read'
);

-- A minimum severity with nothing below it skips nothing and records no skip.
INSERT INTO guard.alerts (id, fingerprint, check_id, entity_type, entity_id, severity, message)
OVERRIDING SYSTEM VALUE
VALUES (7204, 'edge:7204', 'booked_without_appointment', 'call', 7204, 'high', 'x');
INSERT INTO guard.deliveries (kind, subject, channel, status) VALUES ('alert', 7204, 'floor', 'pending');
SELECT is(
    guard.skip_alert_deliveries_below('floor', 'low', 'edge-test'), 0,
    'skip_alert_deliveries_below: nothing below the minimum is 0'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.delivery_skips
        WHERE skipped_by = 'edge-test'
    ), 0,
    'and no skip is recorded'
);

-- A pass in which an own check fails restores the caller's lock_timeout, as check_call does.
SELECT pgtap_setup.appointment_check(
    'failing_edge', 'edge_rule', condition => NULL, detail => 'jsonb_build_object(''x'', 1 / (a.id - a.id))'
);
SELECT guard.register_check('failing_edge', 'edge_rule', 'check_failing_edge', 'low', 'x');
SET LOCAL lock_timeout = '7s';
SELECT results_eq(
    $$SELECT status FROM guard.run_checks(now() - interval '1 hour', NULL) WHERE check_id = 'failing_edge'$$,
    $$VALUES ('failed'::text)$$,
    'run_checks: the own check fails in a pass'
);
SELECT is(current_setting('lock_timeout'), '7s', 'and the caller''s lock_timeout is as it was');

SELECT * FROM finish();
ROLLBACK;
