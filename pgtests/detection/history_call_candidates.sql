-- guard.history_call_candidates, `guard check --all`'s one read of the calls for three checks:
-- every call a check's view returns in the range is among that check's candidates (a call
-- booked within the grace period too, which the view leaves out), none outside the range; and
-- guard.run_checks_between given those candidates finds what it finds reading the views whole,
-- and opens exactly the views' rows. Rows are loaded with the triggers bypassed.
BEGIN;
SELECT plan(6);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
-- rows without a known direction, as an adopted table holds them
SELECT pgtap_setup.drop_calls_checks('guard_calls_direction_check');
SET LOCAL session_replication_role = replica;
-- 1 and 10 claim a booking they have no appointment for, 2 has only company 2's, 3 only a
-- cancelled one; 4 has one its flags do not show, 9 two; 5 is consistent; 6 and 7 have no
-- direction we know; 8 claims a booking within the grace period
INSERT INTO calls (
    id, company_id, retell_call_id, direction, customer_link_status, appointment_made,
    session_outcome, appointment_link_status, appointment_linked_at, booking_failed, created_at,
    updated_at
)
SELECT
    g.id,
    1,
    'c' || g.id,
    CASE g.id WHEN 6 THEN NULL WHEN 7 THEN 'sideways' ELSE 'inbound' END,
    'unlinked',
    g.id IN (1, 2, 3, 5, 8),
    CASE WHEN g.id IN (5, 10) THEN 'appointment_booked' END,
    CASE WHEN g.id = 5 THEN 'linked' END,
    CASE WHEN g.id = 5 THEN now() - interval '1 hour' END,
    FALSE,
    CASE WHEN g.id = 8 THEN now() ELSE now() - interval '1 hour' END,
    CASE WHEN g.id = 8 THEN now() ELSE now() - interval '1 hour' END
FROM generate_series(1, 10) AS g (id);
INSERT INTO appointments (id, company_id, call_id, status, created_at)
VALUES
(1, 2, 2, 'scheduled', now() - interval '1 hour'),
(2, 1, 3, 'cancelled', now() - interval '1 hour'),
(3, 1, 4, 'scheduled', now() - interval '1 hour'),
(4, 1, 5, 'scheduled', now() - interval '1 hour'),
(5, 1, 9, 'scheduled', now() - interval '1 hour'),
(6, 1, 9, 'scheduled', now() - interval '1 hour');
SET LOCAL session_replication_role = origin;

CREATE TEMPORARY TABLE candidates AS
SELECT
    c.check_id,
    c.entity_ids
FROM guard.history_call_candidates(now() - interval '1 day', now() + interval '1 second') AS c;

SELECT is_empty(
    $$SELECT v.check_id, v.entity_id FROM guard.check_booked_without_appointment AS v
      UNION ALL
      SELECT v.check_id, v.entity_id FROM guard.check_flags_contradict_appointments AS v
      UNION ALL
      SELECT v.check_id, v.entity_id FROM guard.check_call_without_direction AS v
      EXCEPT
      SELECT c.check_id, u.id FROM candidates AS c CROSS JOIN LATERAL unnest(c.entity_ids) AS u (id)$$,
    'history_call_candidates: every call a view returns is its check''s candidate'
);
SELECT set_eq(
    $$SELECT c.check_id, u.id FROM candidates AS c CROSS JOIN LATERAL unnest(c.entity_ids) AS u (id)$$,
    $$VALUES ('booked_without_appointment', 1::bigint), ('booked_without_appointment', 2),
        ('booked_without_appointment', 3), ('booked_without_appointment', 8),
        ('booked_without_appointment', 10), ('flags_contradict_appointments', 4),
        ('flags_contradict_appointments', 9), ('call_without_direction', 6),
        ('call_without_direction', 7)$$,
    'history_call_candidates: the calls of each check, once each, the one within its grace too'
);
SELECT is(
    (
        SELECT sum(cardinality(c.entity_ids))::integer
        FROM guard.history_call_candidates(now() - interval '3 hours', now() - interval '2 hours') AS c
    ),
    0,
    'history_call_candidates: no call outside the range'
);

-- the three checks read whole, then again with their candidates: the same offending rows
CREATE TEMPORARY TABLE whole AS
SELECT
    r.check_id,
    r.offending,
    r.status
FROM guard.history_checks() AS h
CROSS JOIN
    LATERAL guard.run_checks_between(
        now() - interval '1 day', now() + interval '1 second', h.check_id
    ) AS r
WHERE h.check_id IN (SELECT c.check_id FROM candidates AS c);
CREATE TEMPORARY TABLE by_candidates AS
SELECT
    r.check_id,
    r.offending,
    r.status
FROM candidates AS c
CROSS JOIN LATERAL guard.run_checks_between(
    now() - interval '1 day', now() + interval '1 second', c.check_id, c.entity_ids
) AS r;

SELECT set_eq(
    $$SELECT w.check_id, w.offending, w.status FROM whole AS w$$,
    $$SELECT b.check_id, b.offending, b.status FROM by_candidates AS b$$,
    'run_checks_between: with its candidates a check finds what it finds reading its view whole'
);
SELECT set_eq(
    $$SELECT b.check_id, b.offending FROM by_candidates AS b$$,
    $$VALUES ('booked_without_appointment', 4), ('flags_contradict_appointments', 2),
        ('call_without_direction', 2)$$,
    'run_checks_between: a candidate its view does not return is no finding'
);
SELECT set_eq(
    $$SELECT a.check_id, a.entity_type, a.entity_id FROM guard.alerts AS a WHERE a.status = 'open'$$,
    $$SELECT v.check_id, v.entity_type, v.entity_id FROM guard.check_booked_without_appointment AS v
      UNION ALL
      SELECT v.check_id, v.entity_type, v.entity_id FROM guard.check_flags_contradict_appointments AS v
      UNION ALL
      SELECT v.check_id, v.entity_type, v.entity_id FROM guard.check_call_without_direction AS v$$,
    'run_checks_between: the alerts are the views'' rows'
);

SELECT * FROM finish();
ROLLBACK;
