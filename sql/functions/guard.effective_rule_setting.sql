-- The stage and mode a rule has for one company: the company's override
-- (guard.rule_company_stages) where it has one, column by column, else the rule's own. A NULL
-- company (none known) gets the rule's. No row for an unknown rule. enabled is the rule's: a
-- rule is switched off for every company at once.
CREATE OR REPLACE FUNCTION guard.effective_rule_setting(rule_id text, company_id bigint)
RETURNS TABLE (stage text, mode text, enabled boolean)
LANGUAGE sql
STABLE
SET search_path = pg_catalog
AS $$
    SELECT
        coalesce(o.stage, r.stage),
        coalesce(o.mode, r.mode),
        r.enabled
    FROM guard.rules AS r
    LEFT JOIN guard.rule_company_stages AS o
        ON o.rule_id = r.id AND o.company_id = effective_rule_setting.company_id
    WHERE r.id = effective_rule_setting.rule_id;
$$;
