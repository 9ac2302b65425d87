-- guard.reconcile rolls a phantom booking back by its company's I4 stage: at observe the call
-- stays as written (no audit row, no review item) and detection's alert is all; correct or
-- enforce roll it back. Rolled out by percentage (both sides of 10 and 50), by name and as the
-- rule's own stage; a company without an override follows the rule; I4 takes no mode.
BEGIN;
SELECT plan(27);

-- Buckets (guard.rollout_bucket): 138 -> 9, 3 -> 10, 166 -> 49, 115 -> 50, 5150 -> 85.
INSERT INTO companies (id, name) VALUES
(3, 'bucket 10'), (115, 'bucket 50'), (138, 'bucket 9'), (166, 'bucket 49'), (5150, 'enforcing');

CREATE FUNCTION pg_temp.phantoms(first_id bigint) RETURNS void LANGUAGE sql AS $$
    SET LOCAL session_replication_role = replica;
    INSERT INTO calls (
        id, company_id, retell_call_id, direction, customer_link_status, session_outcome,
        appointment_made, appointment_link_status, booking_id, created_at, updated_at
    )
    SELECT
        first_id + c.id, c.id, 'p' || (first_id + c.id), 'inbound', 'unlinked',
        'appointment_booked', TRUE, 'linked', 'uid-' || (first_id + c.id),
        now() - interval '1 hour', now() - interval '1 hour'
    FROM companies AS c;
    SET LOCAL session_replication_role = origin;
$$;

CREATE FUNCTION pg_temp.outcomes(first_id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(c.company_id || ':' || c.session_outcome, ' ' ORDER BY c.company_id)
    FROM calls AS c WHERE c.id > first_id AND c.id < first_id + 10000
$$;

SELECT results_eq(
    $$SELECT guard.rollout_bucket(id) FROM companies ORDER BY id$$,
    $$VALUES (10), (50), (9), (49), (85)$$,
    'the companies sit on both sides of 10 % and of 50 %'
);
SELECT is(
    (
        SELECT stage FROM guard.rules
        WHERE id = 'I4_booked_outcome'
    ),
    'correct',
    'I4 ships at stage correct: what reconcile always did'
);

SELECT pg_temp.phantoms(10000);

SELECT is(
    guard.rollout_set('I4_booked_outcome', 'stage', 'enforce', ARRAY[5150]::bigint[]),
    ARRAY[5150]::bigint[],
    'a named company at enforce'
);
SELECT is(
    guard.rollout_set('I4_booked_outcome', 'stage', 'observe', NULL, 10),
    ARRAY[138]::bigint[],
    '10 %: bucket 9 is in, bucket 10 is not'
);
SELECT results_eq(
    $$SELECT c.id, e.stage FROM companies AS c
      CROSS JOIN LATERAL guard.effective_rule_setting('I4_booked_outcome', c.id) AS e
      ORDER BY c.id$$,
    $$VALUES (3::bigint, 'correct'), (115::bigint, 'correct'), (138::bigint, 'observe'),
             (166::bigint, 'correct'), (5150::bigint, 'enforce')$$,
    'companies without an override follow the rule'
);
SELECT is(
    (SELECT stage FROM guard.effective_rule_setting('I4_booked_outcome', NULL)),
    'correct',
    'a NULL company gets the rule''s own stage'
);

CREATE TEMPORARY TABLE observed_before AS
SELECT c.* FROM calls AS c
WHERE c.company_id = 138;

SELECT results_eq(
    $$SELECT affected FROM guard.reconcile(dry_run => TRUE) WHERE action = 'rollback_phantom_booking'$$,
    $$VALUES (4)$$,
    'a dry run counts only the phantoms of companies that correct'
);
SELECT results_eq(
    $$SELECT affected FROM guard.reconcile() WHERE action = 'rollback_phantom_booking'$$,
    $$VALUES (4)$$,
    'the run rolls back what the dry run counted'
);
SELECT is(
    pg_temp.outcomes(10000),
    '3:creation_failed 115:creation_failed 138:appointment_booked 166:creation_failed '
    || '5150:creation_failed',
    'correct and enforce roll back; observe leaves the call'
);
SELECT results_eq(
    $$SELECT c.* FROM calls AS c WHERE c.company_id = 138 ORDER BY c.id$$,
    $$SELECT * FROM observed_before ORDER BY id$$,
    'an observed call is not written at all'
);
SELECT results_eq(
    $$SELECT company_id FROM guard.correction_audit WHERE rule_id = 'I4_booked_outcome' ORDER BY company_id$$,
    $$VALUES (3::bigint), (115::bigint), (166::bigint), (5150::bigint)$$,
    'audited only where rolled back'
);
SELECT results_eq(
    $$SELECT company_id FROM guard.review_items WHERE reason = 'calendar_booking_failure' ORDER BY company_id$$,
    $$VALUES (3::bigint), (115::bigint), (166::bigint), (5150::bigint)$$,
    'queued for review only where rolled back'
);
SELECT results_eq(
    $$SELECT company_id FROM guard.check_booked_without_appointment ORDER BY company_id$$,
    $$VALUES (138::bigint)$$,
    'detection still finds the observed phantom'
);
SELECT results_eq(
    $$SELECT offending FROM guard.run_detection('-infinity', NULL)
      WHERE check_id = 'booked_without_appointment'$$,
    $$VALUES (1)$$,
    'and alerts it'
);
SELECT results_eq(
    $$SELECT affected FROM guard.reconcile() WHERE action = 'rollback_phantom_booking'$$,
    $$VALUES (0)$$,
    'a second run leaves the observed phantom alone again'
);

SELECT is(
    guard.rollout_set('I4_booked_outcome', 'stage', 'observe', NULL, 50),
    ARRAY[3, 138, 166]::bigint[],
    '50 %: buckets 10 and 49 are in, bucket 50 is not'
);
SELECT pg_temp.phantoms(20000);
SELECT results_eq(
    $$SELECT affected FROM guard.reconcile() WHERE action = 'rollback_phantom_booking'$$,
    $$VALUES (2)$$,
    'at 50 % only the companies above it roll back'
);
SELECT is(
    pg_temp.outcomes(20000),
    '3:appointment_booked 115:creation_failed 138:appointment_booked 166:appointment_booked '
    || '5150:creation_failed',
    'buckets 10 and 49 now observe, bucket 50 and the named company do not'
);

-- The rule's own stage to observe, one company back to correct.
SELECT is(
    guard.rollout_set('I4_booked_outcome', 'stage', 'observe'),
    '{}'::bigint[],
    'the rule''s own stage (--all-companies)'
);
SELECT is(
    guard.rollout_set('I4_booked_outcome', 'stage', 'correct', ARRAY[138]::bigint[]),
    ARRAY[138]::bigint[],
    'one observed company back to correct'
);
SELECT pg_temp.phantoms(30000);
SELECT results_eq(
    $$SELECT affected FROM guard.reconcile() WHERE action = 'rollback_phantom_booking'$$,
    $$VALUES (4)$$,
    'the company back at correct rolls back its three phantoms, enforce its new one'
);
SELECT is(
    pg_temp.outcomes(30000),
    '3:appointment_booked 115:appointment_booked 138:creation_failed 166:appointment_booked '
    || '5150:creation_failed',
    'companies without an override follow the rule''s observe; overrides win'
);

-- No mode: reconcile has no write to reject. Refusals change nothing.
CREATE TEMPORARY TABLE overrides_before AS
SELECT
    rule_id,
    company_id,
    stage,
    mode
FROM guard.rule_company_stages;
SELECT throws_like(
    $$SELECT guard.rollout_set('I4_booked_outcome', 'mode', 'reject', ARRAY[3]::bigint[])$$,
    'rule I4_booked_outcome has no mode:%',
    'a mode for named companies is refused'
);
SELECT throws_like(
    $$SELECT guard.rollout_set('I4_booked_outcome', 'mode', 'correct')$$,
    'rule I4_booked_outcome has no mode:%',
    'the rule''s own mode too'
);
SELECT throws_like(
    $$SELECT guard.rollout_clear('I4_booked_outcome', 'mode')$$,
    'rule I4_booked_outcome has no mode:%',
    'and clearing one'
);
SELECT throws_ok(
    $$INSERT INTO guard.rule_company_stages (rule_id, company_id, mode)
      VALUES ('I4_booked_outcome', 3, 'reject')$$,
    '23514',
    'new row for relation "rule_company_stages" violates check constraint "rule_company_stages_mode_reads_company"',
    'a mode override written by hand is refused'
);
SELECT results_eq(
    $$SELECT rule_id, company_id, stage, mode FROM guard.rule_company_stages ORDER BY company_id$$,
    $$SELECT * FROM overrides_before ORDER BY company_id$$,
    'the refusals changed nothing'
);

SELECT * FROM finish();
ROLLBACK;
