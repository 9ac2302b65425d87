-- Security, catalog facts: the four roles exist and cannot log in, guard objects belong to the
-- owner role, row-level security is enabled (and forced on the guard tenant tables) with its
-- policies, SECURITY DEFINER functions have a fixed search_path with pg_temp last, and phone
-- numbers are masked.
BEGIN;
SELECT plan(19);

SELECT is(
    (SELECT count(*)::int FROM guard.role_names AS r INNER JOIN pg_roles AS p ON r.role_name = p.rolname),
    4,
    'a role exists for each of the four kinds'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.role_names AS r INNER JOIN pg_roles AS p ON r.role_name = p.rolname
        WHERE p.rolcanlogin OR p.rolsuper OR p.rolbypassrls
    ),
    0,
    'the group roles cannot log in, are not superusers and do not bypass row-level security'
);
SELECT has_role(guard.role('owner'), 'the owner role exists');
SELECT is(
    (
        SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace
        WHERE nspname = 'guard'
    ),
    guard.role('owner'),
    'schema guard belongs to the owner role'
);
SELECT is(
    (
        SELECT count(*)::int FROM pg_class
        WHERE relnamespace = 'guard'::regnamespace AND relowner <> guard.role('owner')::regrole
    ),
    0,
    'every relation in schema guard belongs to the owner role'
);

SELECT results_eq(
    $$SELECT c.relname::text COLLATE "default", c.relrowsecurity, c.relforcerowsecurity FROM pg_class AS c
      WHERE c.relnamespace = 'guard'::regnamespace AND c.relrowsecurity ORDER BY 1$$,
    $$VALUES ('alerts'::text, TRUE, TRUE), ('booking_attempts', TRUE, TRUE), ('correction_audit', TRUE, TRUE),
             ('daily_reports', TRUE, TRUE), ('review_items', TRUE, TRUE), ('tenant_bindings', TRUE, FALSE),
             ('validation_metrics', TRUE, TRUE)$$,
    'row-level security is enabled and forced on exactly the guard tenant tables (the bindings: enabled)'
);
SELECT results_eq(
    $$SELECT c.relname::text COLLATE "default", c.relrowsecurity, c.relforcerowsecurity FROM pg_class AS c
      WHERE c.oid IN ('public.calls'::regclass, 'public.appointments'::regclass) ORDER BY 1$$,
    $$VALUES ('appointments'::text, TRUE, FALSE), ('calls', TRUE, FALSE)$$,
    'row-level security is enabled, not forced, on calls and appointments'
);
SELECT policies_are(
    'guard', 'alerts', ARRAY['tenant_isolation', 'owner_maintenance'],
    'guard.alerts has the tenant and owner policies'
);
SELECT is(
    (
        SELECT count(*)::int FROM pg_policies
        WHERE
            schemaname = 'guard' AND policyname = 'tenant_isolation'
            AND roles = '{public}' AND cmd = 'ALL'
            AND qual = '(company_id = ANY (( SELECT guard.visible_companies() AS visible_companies)::bigint[]))'
            AND with_check = qual
    ),
    6,
    'each guard tenant table limits every role to its bound companies, reads and writes'
);
SELECT is(
    (
        SELECT count(*)::int FROM pg_policies
        WHERE
            schemaname = 'guard' AND policyname = 'owner_maintenance'
            AND roles = ARRAY[guard.role('owner')]::name[]
    ),
    6,
    'each guard tenant table lets the owner role maintain every tenant'
);
SELECT policy_roles_are(
    'public', 'calls', 'guard_tenant_only', ARRAY[guard.role('reporting'), guard.role('reviewer')]::name[],
    'calls: reporting and reviewer read only their tenant'
);
SELECT is(
    (
        SELECT permissive FROM pg_policies
        WHERE schemaname = 'public' AND tablename = 'appointments' AND policyname = 'guard_tenant_only'
    ),
    'RESTRICTIVE',
    'the tenant policy on the booking tables is restrictive'
);

SELECT is(
    (
        SELECT count(*)::int FROM pg_proc
        WHERE
            pronamespace = 'guard'::regnamespace AND prosecdef
            AND NOT coalesce(proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], FALSE)
    ),
    0,
    'every SECURITY DEFINER function sets search_path = pg_catalog, pg_temp'
);
SELECT set_eq(
    $$SELECT proname::text FROM pg_proc WHERE pronamespace = 'guard'::regnamespace AND prosecdef$$,
    ARRAY[
        'begin_booking', 'begin_booking_attempt', 'booking_attempt_to_record',
        'breaker_restore_state', 'check_call', 'check_flags_at_commit',
        'forget_deleted_companies',
        'complete_booking_attempt', 'fail_booking_attempt', 'record_breaker_transitions',
        'queue_missing_in_calendar', 'reconcile_calendar_booking', 'audit_calendar_restorations',
        'read_own_check', 'record_validation', 'refresh_call_flags', 'restore_column_views',
        'rollback_booking', 'set_aside_column_views',
        'unsettled_booking_attempts', 'validate_booking', 'validate_call_end'
    ],
    'exactly these functions are SECURITY DEFINER'
);
-- The calls triggers run with the writer's rights and record a contradicting write of the
-- booking flags for the commit-time check: the application may do that and nothing more there.
SELECT ok(
    has_column_privilege(guard.role('application'), 'guard.flag_checks_at_commit', 'call_ids', 'INSERT')
    AND has_column_privilege(guard.role('application'), 'guard.flag_checks_at_commit', 'written_by', 'INSERT'),
    'the application may record a pending flag check'
);
SELECT ok(
    NOT has_column_privilege(guard.role('application'), 'guard.flag_checks_at_commit', 'xact', 'INSERT')
    AND NOT has_table_privilege(guard.role('application'), 'guard.flag_checks_at_commit', 'SELECT')
    AND NOT has_table_privilege(guard.role('application'), 'guard.flag_checks_at_commit', 'UPDATE')
    AND NOT has_table_privilege(guard.role('application'), 'guard.flag_checks_at_commit', 'DELETE'),
    'the application cannot read, change, remove or back-date a pending flag check'
);
SELECT throws_ok(
    $$INSERT INTO guard.flag_checks_at_commit (call_ids, written_by) VALUES ('{1}', 'a reason of its own')$$,
    '23514',
    NULL,
    'a pending check names the kind of statement, never a free text'
);
SELECT ok(
    NOT has_function_privilege(guard.role('reporting'), 'guard.rollback_booking(bigint, text, jsonb)', 'EXECUTE'),
    'reporting cannot roll a booking back'
);
SELECT is(guard.mask_phone('+49 30 1234567'), '+49 30 ****567', 'phone numbers are masked');

SELECT * FROM finish();
ROLLBACK;
