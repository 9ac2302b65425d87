-- Ownership and privileges again, for the tenant objects (guard.tenant_bindings and its
-- functions), which are defined after the first run of guard.apply_grants.
DO $$
BEGIN
    PERFORM guard.apply_grants();
END;
$$;
