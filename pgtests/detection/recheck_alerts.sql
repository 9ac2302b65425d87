-- The end of `guard check --all` (guard.recheck_alerts_between): the open alerts whose id is in
-- (after_id, up_to_id] are re-checked against their check's view; those whose row no longer
-- offends are resolved as fixed, those still offending stay open, and an alert outside the range
-- is left alone whatever its row says (a later batch re-checks it). Rows are loaded with the
-- triggers bypassed.
BEGIN;
SELECT plan(10);

INSERT INTO companies (id, name) VALUES (1, 'A');
-- calls 1, 2 and 3 have an active appointment their flags do not show (they offend
-- flags_contradict_appointments); calls 4 and 5 have none (fixed since their alerts opened)
SELECT pgtap_setup.legacy_calls(
    1, 5, now() - interval '1 hour', direction => 'inbound', booked_up_to => 3
);

-- alerts in id order: call 1, call 4 (the first batch), then call 2, call 5
INSERT INTO guard.alerts (
    fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details,
    status, first_seen_at, last_seen_at
)
SELECT
    'flags_contradict_appointments:call:' || c.id,
    'flags_contradict_appointments',
    1,
    'call',
    c.id,
    'high',
    'x',
    '{}',
    'open',
    now(),
    now()
FROM unnest(ARRAY[1, 4, 2, 5]) WITH ORDINALITY AS c (id, n)
ORDER BY c.n;

CREATE FUNCTION pg_temp.alert_id(call_id int) RETURNS bigint
LANGUAGE sql AS $$
    SELECT id FROM guard.alerts WHERE fingerprint = 'flags_contradict_appointments:call:' || call_id
$$;
CREATE FUNCTION pg_temp.open_calls() RETURNS SETOF bigint
LANGUAGE sql AS $$
    SELECT entity_id FROM guard.alerts
    WHERE check_id = 'flags_contradict_appointments' AND status = 'open' ORDER BY entity_id
$$;

SELECT throws_ok(
    $$SELECT * FROM guard.recheck_alerts_between(5, 5)$$,
    '22023', NULL, 'an empty range is refused'
);
SELECT throws_ok(
    $$SELECT * FROM guard.recheck_alerts_between(NULL, 5)$$,
    '22023', NULL, 'a range without a start is refused'
);

SELECT results_eq(
    format(
        $$SELECT rechecked, resolved FROM guard.recheck_alerts_between(%s, %s)
          WHERE check_id = 'flags_contradict_appointments'$$,
        pg_temp.alert_id(1) - 1, pg_temp.alert_id(4)
    ),
    $$VALUES (2, 1)$$,
    'the first batch re-checks its two alerts and resolves the one whose call was fixed'
);
SELECT results_eq(
    $$SELECT * FROM pg_temp.open_calls()$$,
    $$VALUES (1::bigint), (2), (5)$$,
    'the alert of the offending call stays open; the fixed call of a later batch is left alone'
);
SELECT results_eq(
    $$SELECT status, resolution, resolved_at IS NOT NULL FROM guard.alerts
      WHERE fingerprint = 'flags_contradict_appointments:call:4'$$,
    $$VALUES ('resolved', 'fixed', TRUE)$$,
    'the fixed call''s alert is resolved as fixed'
);
SELECT is(
    (
        SELECT sum(r.rechecked + r.resolved)::int
        FROM guard.recheck_alerts_between(pg_temp.alert_id(1) - 1, pg_temp.alert_id(4)) AS r
        WHERE r.check_id <> 'flags_contradict_appointments'
    ),
    0,
    'the other checks have no open alert in the batch: nothing re-checked, nothing resolved'
);
SELECT results_eq(
    format(
        $$SELECT rechecked, resolved FROM guard.recheck_alerts_between(%s, %s)
          WHERE check_id = 'flags_contradict_appointments'$$,
        pg_temp.alert_id(4), pg_temp.alert_id(5)
    ),
    $$VALUES (2, 1)$$,
    'the next batch re-checks the last two and resolves the fixed one'
);
SELECT results_eq(
    $$SELECT * FROM pg_temp.open_calls()$$,
    $$VALUES (1::bigint), (2)$$,
    'only the alerts of calls that still offend are open'
);
SELECT results_eq(
    format(
        $$SELECT rechecked, resolved FROM guard.recheck_alerts_between(%s, %s)
          WHERE check_id = 'flags_contradict_appointments'$$,
        pg_temp.alert_id(5), pg_temp.alert_id(5) + 100
    ),
    $$VALUES (0, 0)$$,
    'a range past the open alerts re-checks nothing'
);
-- The range starts after after_id: the still-open alert at after_id itself is not re-checked,
-- the one at up_to_id is (the alert between them is resolved).
SELECT results_eq(
    format(
        $$SELECT rechecked, resolved FROM guard.recheck_alerts_between(%s, %s)
          WHERE check_id = 'flags_contradict_appointments'$$,
        pg_temp.alert_id(1), pg_temp.alert_id(2)
    ),
    $$VALUES (1, 0)$$,
    'the range is (after_id, up_to_id]: the open alert at after_id is not in it'
);

SELECT * FROM finish();
ROLLBACK;
