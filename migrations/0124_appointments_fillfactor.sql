-- 0124_appointments_fillfactor: public.appointments at fillfactor 90. A cancel, soft delete or
-- move of an appointment (one or two in its life) then finds room in its page and is updated in
-- place (HOT) instead of adding an entry to every index of the table. It applies to pages written
-- from now on, no rewrite.
-- Locks: SHARE UPDATE EXCLUSIVE on public.appointments for milliseconds (writers are not
-- blocked).
ALTER TABLE public.appointments SET (fillfactor = 90);
