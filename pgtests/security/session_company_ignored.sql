-- A booking_guard.company_id set for the session (SET, set_config(..., false), SET LOCAL, the
-- connection's options) is what a client leaves on a pooled server connection for the pooler's
-- next client: guard.current_company ignores it, never refuses it. The pin of this transaction
-- (guard.pin_company) or the login's own default decides; the ignored value neither narrows nor
-- widens what a login sees (its bindings) and authorises nothing. The WARNING it raises is
-- checked from a client (tests/security/test_tenant_isolation.py, tests/pooler/); here it is
-- kept out of the TAP output.
-- Each reading runs as the login (SET SESSION AUTHORIZATION: current_company reads the login's
-- default through session_user, assert_tenant its bindings) and is kept in a transaction-local
-- setting for the assertion, made back as the superuser.
BEGIN;
SELECT plan(16);
SET LOCAL client_min_messages = error;

INSERT INTO companies (id, name) VALUES (1331, 'A'), (1332, 'B'), (1333, 'C');
INSERT INTO calls (id, company_id, retell_call_id, session_outcome)
VALUES (13311, 1331, 'sv1', 'in_progress'), (13321, 1332, 'sv2', 'in_progress'),
(13331, 1333, 'sv3', 'in_progress');
CREATE ROLE pgtap_sv LOGIN IN ROLE guard_reporting;
CREATE ROLE pgtap_sv_default LOGIN IN ROLE guard_reporting;
SELECT guard.tenant_grant(b.login, b.company)
FROM (VALUES ('pgtap_sv', 1331), ('pgtap_sv', 1332), ('pgtap_sv_default', 1331), ('pgtap_sv_default', 1332))
    AS b (login, company);
-- (through EXECUTE: sqlfluff does not parse ALTER ROLE ... SET of a custom setting)
DO $$
BEGIN
    EXECUTE format(
        'ALTER ROLE pgtap_sv_default IN DATABASE %I SET booking_guard.company_id = %L',
        current_database(), '1331'
    );
END;
$$;

-- What the login reads: its company, its visible companies, the companies of the calls it sees,
-- and whether guard.assert_tenant lets it act on a row of company 1333 (bound to neither login).
CREATE FUNCTION pg_temp.reading(label text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    verdict text := 'allowed';
BEGIN
    BEGIN
        PERFORM guard.assert_tenant(1333);
    EXCEPTION WHEN insufficient_privilege THEN
        verdict := 'refused';
    END;
    PERFORM set_config(
        'sv.' || label,
        concat_ws(
            ' ',
            coalesce(guard.current_company()::text, 'none'),
            guard.visible_companies()::text,
            (SELECT array_agg(DISTINCT c.company_id ORDER BY c.company_id) FROM public.calls AS c)::text,
            verdict
        ),
        TRUE
    );
END;
$$;

-- The reading after the login set booking_guard.company_id to the value, for the session.
CREATE FUNCTION pg_temp.reading_with(company_value text, label text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('booking_guard.company_id', company_value, FALSE);
    PERFORM pg_temp.reading(label);
END;
$$;

SET SESSION AUTHORIZATION pgtap_sv;
SELECT pg_temp.reading_with('1333', 'unbound_company');
SELECT pg_temp.reading_with('1331', 'bound_company');
SELECT pg_temp.reading_with('not a number', 'not_a_number');
SELECT guard.pin_company(1332);
SELECT pg_temp.reading('pinned');
-- a pin mark another transaction or server process made
SELECT set_config('booking_guard.company_pin', '1/1', TRUE);
SELECT pg_temp.reading('stale_pin');
RESET SESSION AUTHORIZATION;

SELECT is(current_setting('sv.' || sv.reading), sv.expected, sv.description)
FROM (
    VALUES
    ('unbound_company', 'none {1331,1332} {1331,1332} refused', 'a session value of a company the login is not bound to is ignored: no error, no widening'),
    ('bound_company', 'none {1331,1332} {1331,1332} refused', 'a session value of a bound company is ignored too: it does not narrow'),
    ('not_a_number', 'none {1331,1332} {1331,1332} refused', 'a session value that is no company id is ignored, not an error'),
    ('pinned', '1332 {1332} {1332} refused', 'this transaction''s pin narrows'),
    ('stale_pin', 'none {1331,1332} {1331,1332} refused', 'a pin marked for another transaction is a session value: ignored')
) AS sv (reading, expected, description);

SET SESSION AUTHORIZATION pgtap_sv_default;
SELECT pg_temp.reading_with('1331', 'default');
SELECT pg_temp.reading_with('1332', 'default_other');
SELECT pg_temp.reading_with('1333', 'default_unbound');
SELECT pg_temp.reading_with('', 'default_emptied');
SELECT guard.pin_company(1332);
SELECT pg_temp.reading('default_pinned');
RESET SESSION AUTHORIZATION;

SELECT is(current_setting('sv.' || sv.reading), sv.expected, sv.description)
FROM (
    VALUES
    ('default', '1331 {1331} {1331} refused', 'the login''s own default narrows'),
    ('default_other', '1331 {1331} {1331} refused', 'another bound company set for the session gives way to the login''s default'),
    ('default_unbound', '1331 {1331} {1331} refused', 'an unbound company set for the session gives way to the login''s default'),
    ('default_emptied', '1331 {1331} {1331} refused', 'an emptied value does not clear the login''s default for the next client'),
    ('default_pinned', '1332 {1332} {1332} refused', 'a pin overrides the login''s default for its transaction')
) AS sv (reading, expected, description);

-- The superuser (the multi-tenant application and jobs are confined by no binding either): an
-- ignored value neither narrows nor refuses, so assert_tenant checks nothing.
SELECT set_config('booking_guard.company_id', '1331', FALSE);
SELECT set_config('booking_guard.company_pin', '', TRUE);
SELECT is(guard.current_company(), NULL, 'an unbound session''s value is ignored');
SELECT lives_ok(
    'SELECT guard.assert_tenant(1333)', 'and it neither refuses another company''s row'
);
SELECT lives_ok(
    'SELECT guard.assert_tenant(1331)', 'nor its own'
);
SELECT set_config('booking_guard.company_id', '', FALSE);
SELECT is(guard.current_company(), NULL, 'an empty value selects none');
SELECT guard.pin_company(1331);
SELECT throws_ok(
    'SELECT guard.assert_tenant(1333)', '42501', NULL,
    'a pin still refuses another company''s row'
);
SELECT lives_ok('SELECT guard.assert_tenant(1331)', 'and allows its own');

SELECT * FROM finish();
ROLLBACK;
