-- I3: a new active appointment makes its call booked.
CREATE OR REPLACE TRIGGER guard_appointments_sync_insert
AFTER INSERT ON public.appointments
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.sync_flags_after_appointment_insert();
