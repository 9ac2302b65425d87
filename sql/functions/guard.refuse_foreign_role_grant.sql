-- Trigger of guard.role_grants: a row Booking Guard may not grant (guard.role_grant_refusal:
-- another role, an object outside its own, a privilege outside the closed list) is refused when
-- it is written, with the reason, SQLSTATE 23514. A member of the owner role may write the
-- table, and the grants are applied by the migrating user, often a superuser: without this a
-- row could have that user grant what the writer may not (SELECT on pg_authid, EXECUTE on
-- pg_read_file). guard.apply_grants checks every row again (a row written before this trigger
-- existed, or while it was disabled).
CREATE OR REPLACE FUNCTION guard.refuse_foreign_role_grant()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    refusal text := guard.role_grant_refusal(
        NEW.role_kind, NEW.object_type, NEW.object_name, NEW.privileges, NEW.columns
    );
BEGIN
    IF refusal IS NOT NULL THEN
        RAISE EXCEPTION 'guard.role_grants refuses this row: %', refusal
            USING
                ERRCODE = 'check_violation',
                HINT = 'Booking Guard grants its own roles privileges on its own objects only'
                || ' (docs/dba.md, "Grants as data"); grant anything else yourself.';
    END IF;
    RETURN NEW;
END;
$$;
