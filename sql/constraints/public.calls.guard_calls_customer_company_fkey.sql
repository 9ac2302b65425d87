-- I5: a call's customer belongs to the call's company. No write can link across tenants: the
-- database refuses it (check cross_tenant_link finds the links an adopted database had).
ALTER TABLE public.calls ADD CONSTRAINT guard_calls_customer_company_fkey
FOREIGN KEY (customer_id, company_id) REFERENCES public.customers (id, company_id) NOT VALID;
