-- Keep updated_at true when a DBA tunes a setting or a rule.
CREATE OR REPLACE FUNCTION guard.touch_updated_at()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
