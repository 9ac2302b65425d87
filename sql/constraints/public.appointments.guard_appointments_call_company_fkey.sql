-- I5: an appointment's call belongs to the appointment's company. No write can link across
-- tenants: the database refuses it.
ALTER TABLE public.appointments ADD CONSTRAINT guard_appointments_call_company_fkey
FOREIGN KEY (call_id, company_id) REFERENCES public.calls (id, company_id);
