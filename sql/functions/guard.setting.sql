-- Read one setting; a missing key is an error, never a silent NULL.
CREATE OR REPLACE FUNCTION guard.setting(setting_key text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, guard
AS $$
DECLARE
    found_value jsonb;
BEGIN
    SELECT s.value INTO found_value FROM guard.settings AS s WHERE s.key = setting_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown Booking Guard setting "%"', setting_key
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN found_value;
END;
$$;
