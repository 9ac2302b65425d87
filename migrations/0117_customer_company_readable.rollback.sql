-- Rollback of 0117_customer_company_readable.

DO $$
BEGIN
    EXECUTE format(
        'REVOKE SELECT (id, company_id) ON TABLE public.customers FROM %I, %I, %I',
        guard.role('owner'), guard.role('reporting'), guard.role('reviewer')
    );
END;
$$;
