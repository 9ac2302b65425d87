-- 0120_i4_rollout_by_company: I4_booked_outcome rolled out company by company. guard.reconcile
-- (applied from sql/) rolls a phantom booking back only where its company's I4 stage is correct
-- or enforce; at observe it leaves the call as written. guard.rule_company_stages takes stage
-- overrides of I4 (no mode: a job rejects no write). I4's own stage goes from observe to correct
-- where it is still observe: reconcile rolled back every company's phantoms whatever the stage
-- said, so the row now says what it does and no database changes behaviour.
-- Locks: ACCESS EXCLUSIVE on guard.rule_company_stages (a few rows, read by the owner's commands
-- and by the commit-time check of a contradicting flag write) for milliseconds: every row is
-- I3's and passes both CHECKs. ROW EXCLUSIVE on guard.rules (one row).
ALTER TABLE guard.rule_company_stages
-- squawk-ignore ban-drop-constraint
DROP CONSTRAINT rule_company_stages_rule_reads_company,
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT rule_company_stages_rule_reads_company CHECK (
    rule_id IN ('I3_appointment_flags', 'I4_booked_outcome')
),
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT rule_company_stages_mode_reads_company CHECK (
    mode IS NULL OR rule_id = 'I3_appointment_flags'
);

UPDATE guard.rules
SET stage = 'correct'
WHERE id = 'I4_booked_outcome' AND stage = 'observe';
