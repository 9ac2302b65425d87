-- I5: an appointment's customer belongs to the appointment's company. No write can link across
-- tenants: the database refuses it (check cross_tenant_link finds the links an adopted database
-- had).
ALTER TABLE public.appointments ADD CONSTRAINT guard_appointments_customer_company_fkey
FOREIGN KEY (customer_id, company_id) REFERENCES public.customers (id, company_id) NOT VALID;
