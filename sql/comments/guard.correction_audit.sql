-- What BI tools show for guard.correction_audit (docs/bi-columns.md is generated from these
-- comments).
COMMENT ON TABLE guard.correction_audit IS
'one row per automatic correction of a call or appointment (by reconcile, `guard db validate` or the commit-time flag check): the rule restored, the row, before and after';

COMMENT ON COLUMN guard.correction_audit.id IS 'the correction';
COMMENT ON COLUMN guard.correction_audit.rule_id IS 'the rule it restores (`guard.rules.id`): `I1_call_direction`, `I2_customer_link`, `I3_appointment_flags`, `I4_booked_outcome`, `I6_voice_appointment_call` (a check id in rows from before migration 0027)';
COMMENT ON COLUMN guard.correction_audit.company_id IS 'the company of the corrected row';
COMMENT ON COLUMN guard.correction_audit.entity_type IS 'what was corrected: `call` or `appointment`';
COMMENT ON COLUMN guard.correction_audit.entity_id IS 'the id of that call or appointment';
COMMENT ON COLUMN guard.correction_audit.before IS 'jsonb: the corrected columns before the correction; phone numbers masked in `guard.correction_audit_report`';
COMMENT ON COLUMN guard.correction_audit.after IS 'jsonb: the same columns after it; phone numbers masked in `guard.correction_audit_report`';
COMMENT ON COLUMN guard.correction_audit.reason IS 'why, in words: `reconcile: missing direction`, `legacy row: ...` (`guard db validate`), or what the corrected write did (`an update wrote booking flags that contradict the appointments`)';
COMMENT ON COLUMN guard.correction_audit.actor IS 'the database role that made the correction; for a correction at commit, the login whose write was corrected';
COMMENT ON COLUMN guard.correction_audit.corrected_at IS 'when the correction was made';
