-- New overrides count on their rule's row (guard.recount_rule_company_overrides).
CREATE OR REPLACE TRIGGER rule_company_stages_count_insert
AFTER INSERT ON guard.rule_company_stages
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guard.recount_rule_company_overrides();
