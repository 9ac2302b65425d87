-- I3: a moved, cancelled or soft-deleted appointment updates both calls.
CREATE OR REPLACE TRIGGER guard_appointments_sync_update
AFTER UPDATE ON public.appointments
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.sync_flags_after_appointment_update();
