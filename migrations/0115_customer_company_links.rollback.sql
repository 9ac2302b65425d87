-- Rollback of 0115_customer_company_links.

ALTER TABLE public.appointments DROP CONSTRAINT IF EXISTS guard_appointments_customer_company_fkey;

ALTER TABLE public.calls DROP CONSTRAINT IF EXISTS guard_calls_customer_company_fkey;
