-- 0104_check_reader_role: the role a DBA's own checks run as (guard.read_own_check), whoever
-- starts the pass: a superuser, the owner role, pg_cron or the application through check_call.
-- Named after the reporting role (guard.check_reader(): guard_reporting_checks by default), NOLOGIN,
-- neither superuser nor BYPASSRLS, and a member of nothing: guard.apply_grants gives it exactly
-- what the reporting role may read, every company's rows (detection sees every tenant), nothing
-- to write. The owner role becomes a member of it, so that a DBA (an owner member) may hand a
-- registered check view to it and the migrating user may keep its function up to date. A role of
-- that name that exists already (another database of this cluster) is used as it is.
-- Locks: none (roles are cluster objects; no table is touched).

DO $$
DECLARE
    reader text := left((SELECT r.role_name FROM guard.role_names AS r WHERE r.kind = 'reporting'), 56)
    || '_checks';
    owner_role text := (SELECT r.role_name FROM guard.role_names AS r WHERE r.kind = 'owner');
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS pr WHERE pr.rolname = reader) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', reader);
    END IF;
    IF NOT pg_catalog.pg_has_role(owner_role, reader, 'MEMBER') THEN
        EXECUTE format('GRANT %I TO %I', reader, owner_role);
    END IF;
END;
$$;
