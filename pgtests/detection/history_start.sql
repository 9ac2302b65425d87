-- guard.history_start, where `guard check --all` begins: never after the earliest row a check
-- observes. Booking Guard's views are bounded by the earliest creation of a call, an appointment
-- or a booking attempt (or an attempt's end); a DBA's own views are read in their sandbox, so one
-- that changes the session changes nothing here, and one that fails does not stop the pass.
BEGIN;
SELECT plan(9);

SELECT is(guard.history_start(), NULL, 'an empty database has no history');

INSERT INTO companies (id, name) VALUES (1, 'A');
INSERT INTO services (id, company_id, name) VALUES (7, 1, 'Cut');
INSERT INTO calls (id, company_id, retell_call_id, created_at)
VALUES (1, 1, 'c1', '2026-03-10 12:00+00'), (2, 1, 'c2', '2026-03-12 12:00+00');
SELECT is(guard.history_start(), '2026-03-10 12:00+00'::timestamptz, 'the earliest call');

INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, created_at)
VALUES (1, 1, 2, 'u1', '2026-03-09 08:00+00');
SELECT is(guard.history_start(), '2026-03-09 08:00+00'::timestamptz, 'an earlier appointment');

INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at)
VALUES (1, 1, 7, 'k1', '2026-03-08 07:00+00');
SELECT is(guard.history_start(), '2026-03-08 07:00+00'::timestamptz, 'an earlier booking attempt');

-- A phantom booking created before everything else: the view that reports it observes it at the
-- start, not before.
INSERT INTO calls (id, company_id, retell_call_id, session_outcome, appointment_made, created_at)
VALUES (3, 1, 'c3', 'appointment_booked', TRUE, '2026-03-01 09:00+00');
SELECT is(
    (
        SELECT count(*)::int FROM guard.check_booked_without_appointment
        WHERE observed_at < guard.history_start()
    ),
    0,
    'no shipped view observes a row before the start'
);
SELECT is(guard.history_start(), '2026-03-01 09:00+00'::timestamptz, 'the phantom is where it begins');

-- A DBA's own check observing earlier, then failing, then changing the session.
INSERT INTO guard.rules (id, severity, description, remedy)
VALUES ('own_rule', 'low', 'A rule of the DBA''s own.', 'report');
-- The own check's view, observing each call at the expression given.
CREATE FUNCTION pg_temp.old_calls_view(observed text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'CREATE OR REPLACE VIEW guard.check_old_calls WITH (security_invoker = TRUE) AS SELECT'
        ' ''old_calls''::text AS check_id, c.company_id, ''call''::text AS entity_type,'
        ' c.id AS entity_id, c.id AS call_id, ''low''::text AS severity, %s AS observed_at,'
        ' ''{}''::jsonb AS detail, ''own_rule''::text AS rule_id FROM public.calls AS c',
        observed
    );
END;
$$;

SELECT pg_temp.old_calls_view($$c.created_at - interval '30 days'$$);
SELECT guard.register_check('old_calls', 'own_rule', 'check_old_calls', 'low', 'x');
SELECT is(
    guard.history_start(), '2026-01-30 09:00+00'::timestamptz,
    'an own check that observes earlier moves the start'
);

SELECT pg_temp.old_calls_view($$c.created_at - (1 / (c.id - c.id)) * interval '1 day'$$);
SELECT is(
    guard.history_start(), '2026-03-01 09:00+00'::timestamptz,
    'an own check that fails is left to the batches'
);

SET LOCAL statement_timeout = '5s';
SELECT pg_temp.old_calls_view(
    $$c.created_at - length(set_config('statement_timeout', '0', FALSE)) * interval '1 second'$$
);
SELECT guard.history_start();
SELECT is(
    current_setting('statement_timeout'), '5s',
    'an own check that changes the session leaves the caller''s as it was'
);

SELECT * FROM finish();
ROLLBACK;
