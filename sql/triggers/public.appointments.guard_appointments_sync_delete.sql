-- I3: a deleted appointment's call keeps its flags only while another active one remains.
CREATE OR REPLACE TRIGGER guard_appointments_sync_delete
AFTER DELETE ON public.appointments
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.sync_flags_after_appointment_delete();
