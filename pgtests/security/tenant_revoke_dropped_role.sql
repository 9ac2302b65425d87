-- guard.tenant_revoke of a dropped role's binding: guard.tenant_list shows it under the role's
-- old oid, and that number removes it (only for the company named); a number that is a living
-- role's oid, or is no oid at all, is refused like an unknown name; a role whose name is digits
-- is still found by its name first.
BEGIN;
SELECT plan(10);

INSERT INTO companies (id, name) VALUES (1311, 'one'), (1312, 'two');
CREATE ROLE pgtap_dropped LOGIN IN ROLE guard_reporting;
SELECT guard.tenant_grant('pgtap_dropped', 1311);
SELECT guard.tenant_grant('pgtap_dropped', 1312);
CREATE TEMP TABLE dropped AS
SELECT 'pgtap_dropped'::regrole::oid::text AS role_oid;
DROP ROLE pgtap_dropped;

SELECT ok(
    guard.tenant_revoke((SELECT role_oid FROM dropped), 1311),
    'the old oid of a dropped role revokes its binding'
);
SELECT is(
    (
        SELECT array_agg(t.company_id ORDER BY t.company_id) FROM guard.tenant_list() AS t
        WHERE t.role_name = (SELECT d.role_oid FROM dropped AS d)
    ),
    '{1312}'::bigint[],
    'of that company only'
);
SELECT ok(
    NOT guard.tenant_revoke((SELECT role_oid FROM dropped), 1311),
    'a second time there is no such binding'
);

CREATE ROLE pgtap_living LOGIN IN ROLE guard_reporting;
SELECT guard.tenant_grant('pgtap_living', 1311);
SELECT throws_ok(
    format(
        'SELECT guard.tenant_revoke(%L, 1311)', 'pgtap_living'::regrole::oid::text
    ),
    '42704', NULL,
    'a living role''s oid is no role name'
);
SELECT ok(
    EXISTS (
        SELECT FROM guard.tenant_list()
        WHERE role_name = 'pgtap_living'
    ),
    'and its binding stays'
);
SELECT throws_ok(
    $$SELECT guard.tenant_revoke('4294967296', 1311)$$,
    '42704', NULL,
    'a number past the largest oid is refused'
);
SELECT ok(
    NOT guard.tenant_revoke('4294967295', 1311),
    'the largest oid, which no role has here, is merely not bound'
);
SELECT throws_ok(
    $$SELECT guard.tenant_revoke('04294967295', 1311)$$,
    '42704', NULL,
    'eleven digits are refused'
);

CREATE ROLE "1311" LOGIN IN ROLE guard_reporting;
SELECT guard.tenant_grant('1311', 1311);
SELECT ok(
    guard.tenant_revoke('1311', 1311),
    'a role named with digits is found by its name'
);
SELECT ok(
    NOT EXISTS (
        SELECT FROM guard.tenant_list()
        WHERE role_name = '1311'
    ),
    'and its binding is gone'
);

SELECT * FROM finish();
ROLLBACK;
