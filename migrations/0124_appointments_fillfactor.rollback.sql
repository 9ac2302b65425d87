-- Rollback of 0124_appointments_fillfactor: the default fillfactor again, for pages written from
-- then on.
ALTER TABLE public.appointments RESET (fillfactor);
