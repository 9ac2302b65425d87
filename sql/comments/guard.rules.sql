-- What BI tools show for guard.rules (docs/bi-columns.md is generated from these comments).
COMMENT ON TABLE guard.rules IS
'one row per invariant (`I1` … `I8`) plus the operational rule `job_health`: what it requires, how serious a breach is, how far it is enforced; shipped by migrations, tuned by a DBA';

COMMENT ON COLUMN guard.rules.id IS 'the rule''s id, `I1_call_direction` … `I8_known_values` or `job_health`; what checks, corrections, reports and metrics name (an alert names its check)';
COMMENT ON COLUMN guard.rules.invariant IS 'the invariant''s number, `I1` … `I8` (docs/invariants.md); NULL for `job_health` and for a DBA''s own rule without one';
COMMENT ON COLUMN guard.rules.severity IS 'how serious a breach is: `critical`, `high`, `medium`, `low` (shown in the daily report''s `top_issues`)';
COMMENT ON COLUMN guard.rules.description IS 'what the rule requires, in one sentence';
COMMENT ON COLUMN guard.rules.remedy IS 'what is done about a breach: `auto_fix` (corrected automatically), `review` (queued for a person), `report` (reported only)';
COMMENT ON COLUMN guard.rules.mode IS 'what a bad write meets: `correct` (corrected and audited) or `reject` (refused with an error); a DBA may switch it for `I3_appointment_flags`, for every company or for some (`guard rules mode`: a company''s override wins)';
COMMENT ON COLUMN guard.rules.stage IS 'how far the rule is enforced: `observe` (detected only), `correct` (new writes corrected, a constraint still `NOT VALID`), `enforce` (every constraint validated); a company may have its own for `I3_appointment_flags` and `I4_booked_outcome` (`guard rules stage`)';
COMMENT ON COLUMN guard.rules.constraint_names IS 'the constraints on `calls` and `appointments` that enforce the rule (`guard_calls_direction_check`, ...); `{}` when none';
COMMENT ON COLUMN guard.rules.enabled IS '`false`: a DBA switched it off; only `I3_appointment_flags` reads it (contradicting flag writes then stand); detection is switched per check (`guard.checks.enabled`)';
COMMENT ON COLUMN guard.rules.updated_at IS 'when the row last changed (a DBA''s tuning, or `guard db validate` recording the stage)';
COMMENT ON COLUMN guard.rules.likely_cause IS 'what usually causes a breach, in one sentence (shown with the daily report''s top issues); NULL for a rule a DBA added without one';
COMMENT ON COLUMN guard.rules.action IS 'what a person does about a breach (the daily report''s top issues and action items); NULL for a rule a DBA added without one';
COMMENT ON COLUMN guard.rules.company_overrides IS 'how many companies have their own stage or mode for the rule (`guard rules show` lists them); 0: the rule''s own stage and mode hold for every company';
