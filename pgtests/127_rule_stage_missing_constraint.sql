-- guard.refresh_rule_stages: a rule is at stage enforce only when every constraint it names
-- exists and is validated. A name without a constraint (dropped by hand, or not created yet)
-- keeps the rule at stage correct, beside a validated one as alone.
BEGIN;
SELECT plan(4);

SELECT is(
    (
        SELECT stage FROM guard.rules
        WHERE id = 'I1_call_direction'
    ),
    'enforce',
    'I1''s one constraint is validated: stage enforce'
);
UPDATE guard.rules SET constraint_names = constraint_names || '{guard_calls_no_such_check}'
WHERE id = 'I1_call_direction';
SELECT guard.refresh_rule_stages();
SELECT is(
    (
        SELECT stage FROM guard.rules
        WHERE id = 'I1_call_direction'
    ),
    'correct',
    'a validated constraint and a missing one: stage correct'
);
UPDATE guard.rules SET constraint_names = '{guard_calls_no_such_check}'
WHERE id = 'I1_call_direction';
SELECT guard.refresh_rule_stages();
SELECT is(
    (
        SELECT stage FROM guard.rules
        WHERE id = 'I1_call_direction'
    ),
    'correct',
    'a missing constraint alone: stage correct'
);
UPDATE guard.rules SET constraint_names = '{guard_calls_direction_check}'
WHERE id = 'I1_call_direction';
SELECT guard.refresh_rule_stages();
SELECT is(
    (
        SELECT stage FROM guard.rules
        WHERE id = 'I1_call_direction'
    ),
    'enforce',
    'the validated constraint again: stage enforce'
);

SELECT * FROM finish();
ROLLBACK;
