-- A row of guard.role_grants that Booking Guard may not grant is refused when it is written
-- (guard.refuse_foreign_role_grant).
CREATE OR REPLACE TRIGGER role_grants_refuse_foreign
BEFORE INSERT OR UPDATE ON guard.role_grants
FOR EACH ROW EXECUTE FUNCTION guard.refuse_foreign_role_grant();
