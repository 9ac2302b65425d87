-- The role for application logins that serve some companies only: the application role's name
-- and "_bound" (guard_app_bound by default), created by migration 0116, a member of the
-- application role. The policy guard_bound_login confines its members to the companies bound to
-- them (docs/security.md).
CREATE OR REPLACE FUNCTION guard.bound_application_role()
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog
RETURN left(guard.role('application'), 56) || '_bound';
