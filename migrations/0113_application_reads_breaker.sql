-- 0113_application_reads_breaker: the application's login may read its circuits (`guard breaker
-- list`, `guard breaker show`): SELECT on guard.breaker_state and guard.breaker_events, which
-- guard.role_grants lists (sql/grants/role_grants.sql) and guard.apply_grants gives. Granted
-- here too so that the rollback, which takes it away, has a migration to belong to.
-- Locks: none held long (privileges only).

DO $$
BEGIN
    EXECUTE format(
        'GRANT SELECT ON TABLE guard.breaker_state, guard.breaker_events TO %I',
        guard.role('application')
    );
END
$$;
