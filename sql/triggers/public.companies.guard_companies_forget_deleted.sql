-- Deleting companies removes their bindings and closes their open alerts and review items
-- (guard.forget_deleted_companies), once per statement. guard_*: the application's table, where
-- guard db verify compares only Booking Guard's own objects.
CREATE OR REPLACE TRIGGER guard_companies_forget_deleted
AFTER DELETE ON public.companies
REFERENCING OLD TABLE AS deleted_companies
FOR EACH STATEMENT EXECUTE FUNCTION guard.forget_deleted_companies();
