-- Every written override names its login and time (guard.stamp_rule_company_stage).
CREATE OR REPLACE TRIGGER rule_company_stages_stamp
BEFORE INSERT OR UPDATE ON guard.rule_company_stages
FOR EACH ROW EXECUTE FUNCTION guard.stamp_rule_company_stage();
