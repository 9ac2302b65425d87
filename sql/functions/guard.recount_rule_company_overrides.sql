-- Keep guard.rules.company_overrides equal to the number of the rule's rows in
-- guard.rule_company_stages, once per statement that inserts or deletes some (changed: the
-- statement's transition table). Counted again rather than added to: a count can never drift
-- from the rows. A TRUNCATE is guard.clear_rule_company_overrides'.
CREATE OR REPLACE FUNCTION guard.recount_rule_company_overrides()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE guard.rules AS r
    SET company_overrides = (
        SELECT count(*)::integer FROM guard.rule_company_stages AS o
        WHERE o.rule_id = r.id
    )
    WHERE r.id IN (SELECT c.rule_id FROM changed AS c);
    RETURN NULL;
END;
$$;
