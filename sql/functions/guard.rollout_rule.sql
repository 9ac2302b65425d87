-- Whether a rule's per-row work reads a company's own stage, so that it can be rolled out company
-- by company (guard.rollout_set): the commit-time check of I3 (stage and mode) and reconcile's
-- rollback of I4's phantom bookings (stage alone). The CHECKs rule_company_stages_rule_reads_company
-- and rule_company_stages_mode_reads_company on guard.rule_company_stages hold the same lists.
CREATE OR REPLACE FUNCTION guard.rollout_rule(rule_id text)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
STRICT
SET search_path = pg_catalog
AS $$
    SELECT rule_id IN ('I3_appointment_flags', 'I4_booked_outcome');
$$;
