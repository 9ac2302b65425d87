-- Two more edges of generated mutants (docs/testing.md, "Mutation testing"):
-- - guard.apply_grants grants the reporting and reviewer roles the detection views by their name
--   (check_*) that are shipped or registered, and views only: a table of the DBA's own in schema
--   guard named like one is not opened to them, nor a view of another name, nor a check_* view
--   nobody registered (register_check never judged it);
-- - guard.run_checks_between (`guard check --all`'s batches) runs the enabled checks that have a
--   view, and no disabled one.
BEGIN;
SELECT plan(7);

CREATE TABLE guard.check_notes (note text);
CREATE VIEW guard.check_notes_view WITH (security_invoker = TRUE) AS
SELECT n.note FROM guard.check_notes AS n;
CREATE VIEW guard.notes_view WITH (security_invoker = TRUE) AS
SELECT n.note FROM guard.check_notes AS n;
SELECT lives_ok($$SELECT guard.apply_grants()$$, 'apply_grants runs with a table named like a check view');
SELECT ok(
    NOT pgtap_setup.any_role_may('guard.check_notes', 'SELECT', 'reporting', 'reviewer'),
    'a table named check_* is not granted to the reporting or the reviewer role'
);
SELECT ok(
    NOT pgtap_setup.any_role_may('guard.check_notes_view', 'SELECT', 'reporting', 'reviewer'),
    'a view named check_* that is not registered is granted to neither'
);
SELECT ok(
    NOT pgtap_setup.any_role_may('guard.notes_view', 'SELECT', 'reporting', 'reviewer'),
    'a view of another name is not (guard.role_grants lists what they get)'
);

-- run_checks_between: unknown_value disabled; every other enabled check with a view runs
UPDATE guard.checks SET enabled = FALSE
WHERE id = 'unknown_value';
SELECT is(
    (
        SELECT count(*)::int FROM guard.run_checks_between(now() - interval '1 day', now() + interval '1 second')
        WHERE check_id = 'unknown_value'
    ),
    0,
    'a disabled check is not run by a batch'
);
SELECT set_eq(
    $$SELECT check_id FROM guard.run_checks_between(now() - interval '1 day', now() + interval '1 second')$$,
    $$SELECT id FROM guard.checks WHERE enabled AND check_view IS NOT NULL$$,
    'a batch runs exactly the enabled checks that have a view'
);
SELECT ok(
    EXISTS (
        SELECT FROM guard.checks
        WHERE check_view IS NULL AND enabled
    ),
    'the registry has enabled checks without a view (run by their jobs), which a batch leaves out'
);

SELECT * FROM finish();
ROLLBACK;
