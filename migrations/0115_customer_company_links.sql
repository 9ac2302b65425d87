-- 0115_customer_company_links: a call or an appointment linked to another company's customer is
-- refused (rule I5_tenant_link), as an appointment of another company's call already is. The keys
-- are added NOT VALID: new writes are checked, existing rows are not read; check
-- cross_tenant_link finds the links an adopted database already had, and `guard db validate`
-- validates the keys once those are fixed.
-- Locks: SHARE ROW EXCLUSIVE on customers, calls and appointments for a moment (NOT VALID reads
-- no rows).

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_constraint
        WHERE conname = 'guard_calls_customer_company_fkey' AND conrelid = 'public.calls'::regclass
    ) THEN
        ALTER TABLE public.calls ADD CONSTRAINT guard_calls_customer_company_fkey
        FOREIGN KEY (customer_id, company_id) REFERENCES public.customers (id, company_id) NOT VALID;
    END IF;
END;
$$;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_constraint
        WHERE
            conname = 'guard_appointments_customer_company_fkey'
            AND conrelid = 'public.appointments'::regclass
    ) THEN
        ALTER TABLE public.appointments ADD CONSTRAINT guard_appointments_customer_company_fkey
        FOREIGN KEY (customer_id, company_id) REFERENCES public.customers (id, company_id) NOT VALID;
    END IF;
END;
$$;
