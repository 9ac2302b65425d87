-- Ownership and the application's EXECUTE on guard.record_breaker_transitions: guard.apply_grants
-- grants it only once the function exists, and the canonical build first runs apply_grants
-- before this function is created (sql/manifest.d/50-security.txt), so it runs again here.
DO $$
BEGIN
    PERFORM guard.apply_grants();
END;
$$;
