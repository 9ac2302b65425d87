-- A truncated table leaves no rule overridden (guard.clear_rule_company_overrides).
CREATE OR REPLACE TRIGGER rule_company_stages_count_truncate
AFTER TRUNCATE ON guard.rule_company_stages
FOR EACH STATEMENT EXECUTE FUNCTION guard.clear_rule_company_overrides();
