-- guard.tenant_list after a bound role was dropped (DROP ROLE fires no event trigger, so the
-- binding stays): the binding is listed under the role's old oid, with no logins, so that a DBA
-- sees it, instead of a row without a name.
BEGIN;
SELECT plan(2);

INSERT INTO companies (id, name) VALUES (1291, 'gone');
CREATE ROLE pgtap_gone LOGIN IN ROLE guard_reporting;
SELECT guard.tenant_grant('pgtap_gone', 1291);
CREATE TEMP TABLE gone AS
SELECT 'pgtap_gone'::regrole::oid AS role_oid;
DROP ROLE pgtap_gone;

SELECT is(
    (
        SELECT role_name FROM guard.tenant_list()
        WHERE company_id = 1291
    ),
    (SELECT role_oid::text FROM gone),
    'the binding of a dropped role is listed under its oid'
);
SELECT is(
    (
        SELECT logins FROM guard.tenant_list()
        WHERE company_id = 1291
    ),
    '{}'::text[],
    'with no logins'
);

SELECT * FROM finish();
ROLLBACK;
