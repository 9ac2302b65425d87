-- A rule rolled out company by company (docs/dba.md, "Rollout by company"): a row overrides the
-- rule's stage, its mode or both for one company; where a column is NULL, or a company has no
-- row, the rule's own value applies (guard.effective_rule_setting). Only the owner role reads or
-- writes it (`guard rules stage|mode`); the commit-time flag check reads it through its SECURITY
-- DEFINER function.
-- Only rules whose per-row work reads the effective value may be rolled out: I3's commit-time
-- check (guard.check_flags_at_commit, stage and mode) and I4's rollback of phantom bookings
-- (guard.reconcile, stage alone: a job has nobody to reject a write to). The other rules are
-- enforced by constraints and normalisers that act on every company alike.
-- No foreign key to public.companies: that would put a lock and a check on the application's
-- table; a deleted company's rows go with it (guard.forget_deleted_companies).
CREATE TABLE guard.rule_company_stages (
    rule_id text NOT NULL REFERENCES guard.rules (id) ON DELETE CASCADE,
    company_id bigint NOT NULL,
    stage text CHECK (stage IN ('observe', 'correct', 'enforce')),
    mode text CHECK (mode IN ('correct', 'reject')),
    set_by text NOT NULL DEFAULT session_user,
    set_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, company_id),
    CONSTRAINT rule_company_stages_overrides_something CHECK (
        stage IS NOT NULL OR mode IS NOT NULL
    ),
    CONSTRAINT rule_company_stages_rule_reads_company CHECK (
        rule_id IN ('I3_appointment_flags', 'I4_booked_outcome')
    ),
    CONSTRAINT rule_company_stages_mode_reads_company CHECK (
        mode IS NULL OR rule_id = 'I3_appointment_flags'
    )
);

COMMENT ON TABLE guard.rule_company_stages IS
'A rule''s stage or mode for one company, overriding the rule''s own (guard rules stage|mode).';
