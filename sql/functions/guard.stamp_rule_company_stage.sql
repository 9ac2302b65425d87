-- Who set a company's override, and when: the login and the time of the write, whatever the
-- statement says (a DBA's hand-written UPDATE included).
CREATE OR REPLACE FUNCTION guard.stamp_rule_company_stage()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NEW.set_by := session_user;
    NEW.set_at := now();
    RETURN NEW;
END;
$$;
