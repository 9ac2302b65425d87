-- guard.run_checks_between reads a shipped check in two statements: the keys of its offending
-- rows, then those rows whole by their key (or the view again, past keyed_reread_limit keys).
-- Either way the alerts it opens are the view's rows, every column of them: a call-level and an
-- appointment-level check read by key, and flags_contradict_appointments with more offending
-- rows than are read by key (10,001). Rows are loaded with the triggers bypassed.
BEGIN;
SELECT plan(3);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
SET LOCAL session_replication_role = replica;
-- calls 1 to 10002: an active appointment their flags do not show (flags_contradict_appointments),
-- but for call 3, whose appointment is company 2's (cross_tenant_link); call 20000 claims a
-- booking it has no appointment for (booked_without_appointment)
INSERT INTO calls (
    id, company_id, retell_call_id, direction, customer_link_status, appointment_made, created_at,
    updated_at
)
SELECT
    g.id,
    1,
    'c' || g.id,
    'inbound',
    'unlinked',
    g.id = 20000,
    now() - interval '1 hour',
    now() - interval '1 hour'
FROM generate_series(1, 20000) AS g (id)
WHERE g.id <= 10002 OR g.id = 20000;
INSERT INTO appointments (id, company_id, call_id, created_at)
SELECT
    g.id,
    CASE g.id WHEN 3 THEN 2 ELSE 1 END,
    g.id AS call_id,
    now() - interval '1 hour'
FROM generate_series(1, 10002) AS g (id);
SET LOCAL session_replication_role = origin;

-- every shipped check view's rows as the alerts record them (record_findings adds a call_id
-- to the details of an alert whose entity is no call)
CREATE FUNCTION pg_temp.view_rows() RETURNS TABLE (
    check_id text, company_id bigint, entity_type text, entity_id bigint, severity text,
    details jsonb
)
LANGUAGE plpgsql AS $$
DECLARE
    view_name text;
BEGIN
    FOREACH view_name IN ARRAY guard.shipped_check_views() LOOP
        RETURN QUERY EXECUTE format(
            $q$SELECT v.check_id, v.company_id, v.entity_type, v.entity_id, v.severity,
                   v.detail || CASE WHEN v.call_id IS NOT NULL AND v.entity_type <> 'call'
                       THEN jsonb_build_object('call_id', v.call_id) ELSE '{}' END
               FROM guard.%I AS v
               WHERE v.observed_at >= now() - interval '1 day'$q$,
            view_name
        );
    END LOOP;
END;
$$;

CREATE TEMPORARY TABLE ran AS
SELECT
    r.check_id,
    r.offending,
    r.status
FROM guard.run_checks_between(now() - interval '1 day', now() + interval '1 second') AS r;

SELECT set_eq(
    $$SELECT r.check_id, r.offending FROM ran AS r WHERE r.offending > 0$$,
    $$VALUES ('booked_without_appointment', 1), ('cross_tenant_link', 1),
        ('flags_contradict_appointments', 10001)$$,
    'run_checks_between: every offending row counted, past the rows read by key too'
);
SELECT is_empty(
    $$SELECT r.check_id FROM ran AS r WHERE r.status <> 'ok'$$,
    'run_checks_between: every check ran through'
);
SELECT set_eq(
    $$SELECT a.check_id, a.company_id, a.entity_type, a.entity_id, a.severity, a.details
      FROM guard.alerts AS a WHERE a.status = 'open'$$,
    $$SELECT * FROM pg_temp.view_rows()$$,
    'run_checks_between: its alerts are the check views'' rows, column by column'
);

SELECT * FROM finish();
ROLLBACK;
