-- The role a DBA's own checks run as (guard.read_own_check): the reporting role's name and
-- "_checks" (guard_reporting_checks by default), created by migration 0104. It may read what the
-- reporting role may read, of every company, and nothing else (guard.apply_grants).
CREATE OR REPLACE FUNCTION guard.check_reader()
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog
RETURN left(guard.role('reporting'), 56) || '_checks';
