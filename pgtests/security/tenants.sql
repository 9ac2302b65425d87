-- Tenants bound to roles: the owner's functions bind and unbind, a reporting login sees exactly
-- its bound companies in tables and detection views, the setting only narrows, and the login can
-- neither bind itself nor write the bindings. Roles are created inside the transaction and go
-- with its rollback.
BEGIN;
SELECT plan(20);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
INSERT INTO calls (id, company_id, retell_call_id, session_outcome, booking_failed, created_at)
VALUES
(1, 1, 'a1', 'creation_failed', TRUE, now()),
(2, 2, 'b1', 'creation_failed', TRUE, now());
SELECT guard.enqueue_review(1, 1, NULL, 'calendar_booking_failure');
SELECT guard.enqueue_review(2, 2, NULL, 'calendar_booking_failure');

CREATE ROLE pgtap_bi LOGIN IN ROLE guard_reporting;
CREATE ROLE pgtap_reviewers NOLOGIN IN ROLE guard_reviewer;
CREATE ROLE pgtap_reviewer LOGIN IN ROLE pgtap_reviewers;

SELECT ok(guard.tenant_grant('pgtap_bi', 1), 'the owner binds a login to a company');
SELECT ok(NOT guard.tenant_grant('pgtap_bi', 1), 'binding it twice changes nothing');
SELECT ok(guard.tenant_grant('pgtap_reviewers', 2), 'and a group role to another');
SELECT results_eq(
    $$SELECT role_name COLLATE "default", company_id, array_to_string(logins, ',') COLLATE "default"
      FROM guard.tenant_list()$$,
    $$VALUES ('pgtap_bi'::text, 1::bigint, 'pgtap_bi'::text), ('pgtap_reviewers', 2, 'pgtap_reviewer')$$,
    'tenant_list shows each binding and the logins it reaches'
);
SELECT throws_ok(
    $$SELECT guard.tenant_grant('pgtap_bi', 42)$$, '23503', 'company 42 does not exist',
    'a company that does not exist is refused'
);

SELECT throws_ok(
    $$SELECT guard.pin_company(4242)$$, 'P0002', NULL, 'pinning a company that does not exist is refused'
);
SELECT is(guard.may_pin_company(2), TRUE, 'a superuser may pin any company that exists');
SET ROLE pgtap_bi;
SELECT is(guard.visible_companies(), ARRAY[1]::bigint[], 'the login sees its bound company');
SELECT results_eq(
    $$SELECT DISTINCT company_id FROM guard.check_recent_booking_failure$$,
    $$VALUES (1::bigint)$$,
    'a detection view shows the bound company only'
);
SELECT throws_ok(
    $$SELECT guard.pin_company(2)$$, 'P0002', 'company 2 does not exist or is not bound to role "pgtap_bi"',
    'pinning an unbound company is refused (it would show nothing)'
);
-- what a session SET left on a pooled server connection looks like: the company without this
-- transaction's pin. Ignored, neither an error nor a narrowing: the login sees its bindings.
SELECT set_config('booking_guard.company_id', '2', TRUE);
SELECT set_config('booking_guard.company_pin', '', TRUE);
SELECT results_eq(
    $$SELECT DISTINCT company_id FROM guard.calls_report$$,
    $$VALUES (1::bigint)$$,
    'a company set for the session, not pinned in this transaction, is ignored'
);
SELECT throws_ok(
    $$SELECT guard.pin_company(NULL)$$, '22004', NULL, 'pinning no company is refused'
);
SELECT set_config('booking_guard.company_id', '', TRUE);
SELECT throws_ok(
    $$SELECT guard.tenant_grant('pgtap_bi', 2)$$, '42501', NULL,
    'the login cannot bind itself through the function'
);
SELECT throws_ok(
    $$INSERT INTO guard.tenant_bindings (role_id, company_id) VALUES ('pgtap_bi', 2)$$,
    '42501', NULL, 'nor by writing the bindings'
);
SELECT is(
    (SELECT count(*)::int FROM guard.tenant_bindings),
    1,
    'it reads only the bindings that apply to it'
);
RESET ROLE;

SET ROLE pgtap_reviewer;
SELECT is(guard.visible_companies(), ARRAY[2]::bigint[], 'a member inherits its group''s binding');
SELECT results_eq(
    $$SELECT company_id, claimed_by COLLATE "default", claimed_by_role COLLATE "default"
      FROM guard.review_claim('label', 5)$$,
    $$VALUES (2::bigint, 'label'::text, session_user::text COLLATE "default")$$,
    'a reviewer claims its companies'' items only, and the login is recorded beside the label'
);
RESET ROLE;

SELECT ok(guard.tenant_revoke('pgtap_bi', 1), 'the owner unbinds');
SET ROLE pgtap_bi;
SELECT is(guard.visible_companies(), '{}'::bigint[], 'an unbound login sees no company');
SELECT is_empty($$SELECT id FROM calls$$, 'and no call');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
