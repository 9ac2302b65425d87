-- Whether a rule's per-row check reads a company's own stage and mode, so that it can be rolled
-- out company by company (guard.rollout_set): today the commit-time check of I3 alone. The CHECK
-- rule_company_stages_rule_reads_company on guard.rule_company_stages holds the same list.
CREATE OR REPLACE FUNCTION guard.rollout_rule(rule_id text)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
STRICT
SET search_path = pg_catalog
AS $$
    SELECT rule_id IN ('I3_appointment_flags');
$$;
