-- 0117_customer_company_readable: the owner, reporting and reviewer roles may read a customer's
-- id and company (never its name or phone number): check cross_tenant_link compares a call's or
-- an appointment's company with its customer's. guard.role_grants lists it and
-- guard.apply_grants gives it; granted here too so that the rollback, which takes it away, has a
-- migration to belong to.
-- Locks: none held long (privileges only).

DO $$
BEGIN
    EXECUTE format(
        'GRANT SELECT (id, company_id) ON TABLE public.customers TO %I, %I, %I',
        guard.role('owner'), guard.role('reporting'), guard.role('reviewer')
    );
END;
$$;
