-- A truncated guard.rule_company_stages leaves no rule overridden: every count goes to 0 (a
-- TRUNCATE has no transition table for guard.recount_rule_company_overrides).
CREATE OR REPLACE FUNCTION guard.clear_rule_company_overrides()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE guard.rules SET company_overrides = 0
    WHERE company_overrides <> 0;
    RETURN NULL;
END;
$$;
