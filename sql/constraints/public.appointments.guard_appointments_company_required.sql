-- I5: without a company the composite foreign key below would not be checked (MATCH SIMPLE).
ALTER TABLE public.appointments ADD CONSTRAINT guard_appointments_company_required
CHECK (company_id IS NOT NULL);
