-- Rollback of 0120_i4_rollout_by_company: only I3 takes overrides again, so I4's go and every
-- company follows I4's own stage. That stage stays what it is: a rollback keeps the definitions
-- it has (docs/dba.md, "Rolling back"), and this reconcile would stop rolling phantoms back at
-- observe; the reconcile of a release reached corrects whatever the stage says. An observe
-- chosen after this migration comes back as correct when it is applied again: below it the stage
-- had no effect, and the migration cannot tell a chosen observe from the shipped one.
-- Locks: ACCESS EXCLUSIVE on guard.rule_company_stages for milliseconds (a few rows).
DELETE FROM guard.rule_company_stages
WHERE rule_id = 'I4_booked_outcome';

ALTER TABLE guard.rule_company_stages
DROP CONSTRAINT rule_company_stages_mode_reads_company,
DROP CONSTRAINT rule_company_stages_rule_reads_company,
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT rule_company_stages_rule_reads_company CHECK (
    rule_id IN ('I3_appointment_flags')
);
