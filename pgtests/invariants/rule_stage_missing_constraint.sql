-- guard.refresh_rule_stages: a rule is at stage enforce only when every constraint it names
-- exists and is validated. A name without a constraint (dropped by hand, or not created yet)
-- keeps the rule at stage correct, beside a validated one as alone. A NOT VALID constraint of
-- the same name on another table is not the rule's; rules without constraints keep their stage.
BEGIN;
SELECT plan(6);

CREATE FUNCTION pg_temp.i1_stage() RETURNS text LANGUAGE sql AS $$
    SELECT stage FROM guard.rules WHERE id = 'I1_call_direction'
$$;

CREATE TEMP TABLE stage_before AS
SELECT
    id,
    stage
FROM guard.rules
WHERE constraint_names = '{}';

SELECT is(pg_temp.i1_stage(), 'enforce', 'I1''s one constraint is validated: stage enforce');
UPDATE guard.rules SET constraint_names = constraint_names || '{guard_calls_no_such_check}'
WHERE id = 'I1_call_direction';
SELECT guard.refresh_rule_stages();
SELECT is(pg_temp.i1_stage(), 'correct', 'a validated constraint and a missing one: stage correct');
UPDATE guard.rules SET constraint_names = '{guard_calls_no_such_check}'
WHERE id = 'I1_call_direction';
SELECT guard.refresh_rule_stages();
SELECT is(pg_temp.i1_stage(), 'correct', 'a missing constraint alone: stage correct');
UPDATE guard.rules SET constraint_names = '{guard_calls_direction_check}'
WHERE id = 'I1_call_direction';
SELECT guard.refresh_rule_stages();
SELECT is(pg_temp.i1_stage(), 'enforce', 'the validated constraint again: stage enforce');

-- another table's NOT VALID constraint of the same name
CREATE TABLE public.calls_archive_127 (direction text);
INSERT INTO public.calls_archive_127 VALUES ('sideways');
ALTER TABLE public.calls_archive_127
ADD CONSTRAINT guard_calls_direction_check CHECK (direction IN ('inbound', 'outbound')) NOT VALID;
SELECT guard.refresh_rule_stages();
SELECT is(pg_temp.i1_stage(), 'enforce', 'a NOT VALID constraint of the same name on another table is not the rule''s');
SELECT set_eq(
    'SELECT id, stage FROM guard.rules WHERE constraint_names = ''{}''',
    'SELECT id, stage FROM stage_before',
    'rules without constraints keep their stage'
);

SELECT * FROM finish();
ROLLBACK;
