-- I3 rolled out company by company: a company's override (guard.rule_company_stages) of the
-- rule's stage or mode decides how the commit-time check judges that company's calls; every
-- other company, and a NULL one, follows the rule's own row. Every role's rights on the table.
-- `SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE` runs the pending checks now, as a
-- commit would (a pgTAP file never commits).
BEGIN;
SELECT plan(41);

-- Companies 1 and 4 keep the rule's own setting; 2 is in reject mode, 3 at stage observe.
INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B'), (3, 'C'), (4, 'D');
INSERT INTO calls (id, company_id, retell_call_id, session_outcome)
SELECT
    g,
    1 + (g - 1) % 4,
    'c' || g,
    'information_only'
FROM generate_series(1, 40) AS g;
INSERT INTO guard.rule_company_stages (rule_id, company_id, mode)
VALUES ('I3_appointment_flags', 2, 'reject');
INSERT INTO guard.rule_company_stages (rule_id, company_id, stage)
VALUES ('I3_appointment_flags', 3, 'observe');
SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE;

CREATE FUNCTION pg_temp.made(call_id bigint) RETURNS boolean LANGUAGE sql AS $$
    SELECT appointment_made FROM calls WHERE id = call_id
$$;

SELECT is(
    (
        SELECT company_overrides FROM guard.rules
        WHERE id = 'I3_appointment_flags'
    ),
    2,
    'the rule''s row counts the companies that override it'
);

-- The effective setting, column by column.
SELECT results_eq(
    $$SELECT stage, mode, enabled FROM guard.effective_rule_setting('I3_appointment_flags', 1)$$,
    $$VALUES ('correct', 'correct', TRUE)$$,
    'a company without an override has the rule''s stage and mode'
);
SELECT results_eq(
    $$SELECT stage, mode FROM guard.effective_rule_setting('I3_appointment_flags', 2)$$,
    $$VALUES ('correct', 'reject')$$,
    'a mode override: the company''s mode, the rule''s stage'
);
SELECT results_eq(
    $$SELECT stage, mode FROM guard.effective_rule_setting('I3_appointment_flags', 3)$$,
    $$VALUES ('observe', 'correct')$$,
    'a stage override: the company''s stage, the rule''s mode'
);
SELECT results_eq(
    $$SELECT stage, mode FROM guard.effective_rule_setting('I3_appointment_flags', NULL)$$,
    $$VALUES ('correct', 'correct')$$,
    'a NULL company has the rule''s stage and mode'
);
SELECT is_empty(
    $$SELECT * FROM guard.effective_rule_setting('no_such_rule', 1)$$,
    'an unknown rule has no setting'
);
SELECT is_empty(
    $$SELECT * FROM guard.effective_rule_setting(NULL, 1)$$,
    'a NULL rule has no setting'
);
UPDATE guard.rules SET mode = 'reject'
WHERE id = 'I3_appointment_flags';
SELECT results_eq(
    $$SELECT c, e.mode FROM unnest('{1,2,3}'::bigint[]) AS c,
      guard.effective_rule_setting('I3_appointment_flags', c) AS e ORDER BY c$$,
    $$VALUES (1::bigint, 'reject'), (2, 'reject'), (3, 'reject')$$,
    'the rule''s own mode reaches every company that does not override it'
);
UPDATE guard.rules SET mode = 'correct'
WHERE id = 'I3_appointment_flags';

-- At commit: each call by its company's setting.
SELECT throws_ok(
    $$UPDATE calls SET appointment_made = TRUE WHERE id = 2$$,
    '23514',
    'booking flags of 1 call(s) contradict their appointments',
    'company 2 (reject mode): its contradicting write is refused'
);
SELECT lives_ok(
    $$UPDATE calls SET appointment_made = TRUE WHERE id = 1$$,
    'company 1 (the rule''s correct mode): its contradicting write commits'
);
SELECT is(pg_temp.made(1), FALSE, 'company 1: the write is corrected');
SELECT is(
    (
        SELECT count(*)::int FROM guard.correction_audit
        WHERE entity_id = 1 AND company_id = 1
    ),
    1,
    'company 1: the correction is audited'
);
SELECT lives_ok(
    $$UPDATE calls SET appointment_made = TRUE WHERE id = 3$$,
    'company 3 (stage observe): its contradicting write commits'
);
SELECT is(pg_temp.made(3), TRUE, 'company 3: the write stands (detection reports it)');
SELECT is(
    (
        SELECT count(*)::int FROM guard.correction_audit
        WHERE entity_id = 3
    ),
    0,
    'company 3: nothing corrected or audited'
);
SELECT lives_ok(
    $$UPDATE calls SET session_outcome = 'appointment_booked' WHERE id = 6$$,
    'company 2: a write that contradicts nothing commits'
);
SELECT throws_ok(
    $$UPDATE calls SET appointment_made = TRUE WHERE id IN (5, 10, 7)$$,
    '23514',
    'booking flags of 1 call(s) contradict their appointments',
    'one statement over three companies: the one call of the reject company fails it all'
);
SELECT is(pg_temp.made(5), FALSE, 'and the other companies'' writes of it are undone too');

-- The other side: the rule in reject mode, one company overridden back to correct.
UPDATE guard.rules SET mode = 'reject'
WHERE id = 'I3_appointment_flags';
INSERT INTO guard.rule_company_stages (rule_id, company_id, mode)
VALUES ('I3_appointment_flags', 1, 'correct');
SELECT throws_ok(
    $$UPDATE calls SET appointment_made = TRUE WHERE id = 4$$,
    '23514',
    'booking flags of 1 call(s) contradict their appointments',
    'company 4 (no override) follows the rule''s reject mode'
);
SELECT lives_ok(
    $$UPDATE calls SET appointment_made = TRUE WHERE id = 9$$,
    'company 1 (overridden to correct) is corrected under a rule in reject mode'
);
SELECT is(pg_temp.made(9), FALSE, 'company 1: corrected, not refused');
UPDATE guard.rules SET mode = 'correct'
WHERE id = 'I3_appointment_flags';

-- Without any override the rule's row decides alone, its stage observe included.
DELETE FROM guard.rule_company_stages;
SELECT is(
    (
        SELECT company_overrides FROM guard.rules
        WHERE id = 'I3_appointment_flags'
    ),
    0,
    'deleted overrides no longer count'
);
UPDATE guard.rules SET stage = 'observe'
WHERE id = 'I3_appointment_flags';
UPDATE calls SET appointment_made = TRUE
WHERE id = 13;
SELECT is(pg_temp.made(13), TRUE, 'the rule at stage observe lets every company''s write stand');
INSERT INTO guard.rule_company_stages (rule_id, company_id, stage, mode)
VALUES ('I3_appointment_flags', 2, 'correct', 'reject');
SELECT throws_ok(
    $$UPDATE calls SET appointment_made = TRUE WHERE id = 14$$,
    '23514',
    'booking flags of 1 call(s) contradict their appointments',
    'under a rule at stage observe, a company rolled out to reject is refused'
);
UPDATE calls SET appointment_made = TRUE
WHERE id = 21;
SELECT is(pg_temp.made(21), TRUE, 'and another company''s write still stands');
DELETE FROM guard.rule_company_stages;
UPDATE guard.rules SET stage = 'correct'
WHERE id = 'I3_appointment_flags';
UPDATE calls SET appointment_made = TRUE
WHERE id = 17;
SELECT is(pg_temp.made(17), FALSE, 'the rule at stage correct corrects it again');

-- The table refuses what no reader could use.
SELECT throws_ok(
    $$INSERT INTO guard.rule_company_stages (rule_id, company_id) VALUES ('I3_appointment_flags', 1)$$,
    '23514', NULL, 'an override of neither stage nor mode is refused'
);
SELECT throws_ok(
    $$INSERT INTO guard.rule_company_stages (rule_id, company_id, mode) VALUES ('I5_tenant_link', 1, 'reject')$$,
    '23514', NULL, 'a rule whose checks do not read a company''s setting is refused'
);
SELECT throws_ok(
    $$INSERT INTO guard.rule_company_stages (rule_id, company_id, mode) VALUES ('I3_appointment_flags', NULL, 'reject')$$,
    '23502', NULL, 'a NULL company is refused'
);
SELECT throws_ok(
    $$INSERT INTO guard.rule_company_stages (rule_id, company_id, stage) VALUES ('I3_appointment_flags', 1, 'strict')$$,
    '23514', NULL, 'an unknown stage is refused'
);

-- Who and when come from the session, whatever the statement says.
INSERT INTO guard.rule_company_stages (rule_id, company_id, mode, set_by, set_at)
VALUES ('I3_appointment_flags', 2, 'reject', 'somebody else', '2000-01-01');
SELECT ok(
    (
        SELECT set_by = session_user::text AND set_at = now() FROM guard.rule_company_stages
        WHERE company_id = 2
    ),
    'the override names the session''s login and the time of the write'
);

INSERT INTO guard.rule_company_stages (rule_id, company_id, stage)
VALUES ('I3_appointment_flags', 3, 'observe');
TRUNCATE guard.rule_company_stages;
SELECT is(
    (
        SELECT company_overrides FROM guard.rules
        WHERE id = 'I3_appointment_flags'
    ),
    0,
    'a truncated table leaves no rule overridden'
);
INSERT INTO guard.rule_company_stages (rule_id, company_id, mode)
VALUES ('I3_appointment_flags', 2, 'reject');

-- The rollout bucket: stable, 0 to 99, NULL for no company.
SELECT results_eq(
    $$SELECT guard.rollout_bucket(c) FROM unnest('{1,2,3,-1,9223372036854775807}'::bigint[]) AS c$$,
    $$VALUES (60), (5), (10), (3), (9)$$,
    'the bucket is md5 of the id''s text, first 32 bits, modulo 100'
);
SELECT is(
    (
        SELECT count(*)::int FROM generate_series(-5000, 5000) AS c
        WHERE guard.rollout_bucket(c) NOT BETWEEN 0 AND 99
    ),
    0,
    'every bucket is between 0 and 99'
);
SELECT is(guard.rollout_bucket(NULL), NULL, 'no company, no bucket');

-- A deleted company's overrides go with it.
DELETE FROM calls
WHERE company_id = 2;
DELETE FROM companies
WHERE id = 2;
SELECT is_empty(
    $$SELECT FROM guard.rule_company_stages WHERE company_id = 2$$,
    'a deleted company takes its overrides with it'
);

-- Roles: the owner maintains the table; the application, reporting and reviewer roles neither
-- read nor write it (the commit-time check reads it with the owner's rights).
SELECT ok(
    has_table_privilege(guard.role('owner'), 'guard.rule_company_stages', 'SELECT, INSERT, UPDATE, DELETE'),
    'the owner role reads and writes the overrides'
);
SELECT ok(
    NOT pgtap_setup.any_role_may('guard.rule_company_stages', 'SELECT, INSERT, UPDATE, DELETE', 'application'),
    'the application role can neither read nor change the rollout'
);
SELECT ok(
    NOT pgtap_setup.any_role_may('guard.rule_company_stages', 'SELECT, INSERT, UPDATE, DELETE', 'reporting', 'reviewer'),
    'the reporting and reviewer roles can neither read nor change the rollout'
);
SELECT ok(
    NOT has_table_privilege(guard.role('application'), 'guard.rules', 'UPDATE'),
    'the application role cannot change a rule''s own stage or mode'
);
SELECT ok(
    NOT has_function_privilege(guard.role('application'), 'guard.effective_rule_setting(text, bigint)', 'EXECUTE'),
    'the application role does not call the effective setting itself'
);

SELECT * FROM finish();
ROLLBACK;
