-- The role name of one kind of Booking Guard role (owner, application, reporting, reviewer) in
-- this database, from guard.role_names. An unknown kind is an error, never a silent NULL.
CREATE OR REPLACE FUNCTION guard.role(role_kind text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog
AS $$
DECLARE
    found_name text;
BEGIN
    SELECT r.role_name INTO found_name FROM guard.role_names AS r WHERE r.kind = role_kind;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown Booking Guard role kind "%"', role_kind
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN found_name;
END;
$$;
