-- I3: a row whose call, company or activeness changed notes its calls for the statement's trigger
-- (guard_appointments_sync_update); an UPDATE of no such column does not fire it.
CREATE OR REPLACE TRIGGER guard_appointments_note_change
AFTER UPDATE OF call_id, company_id, status, deleted_at ON public.appointments
FOR EACH ROW EXECUTE FUNCTION guard.note_appointment_change();
