-- 0090_rule_company_stages: a rule rolled out company by company (`guard rules stage|mode
-- --company|--percent`, docs/dba.md "Rollout by company"). guard.rule_company_stages holds a
-- company's override of a rule's stage or mode; I3's commit-time check reads the effective value
-- for the company of each call it judges (guard.check_flags_at_commit, applied from sql/). The
-- table is new and empty. guard.rules.company_overrides counts each rule's overriding companies
-- (kept by the table's triggers): the check reads it from the rule's row, so a rule nobody
-- overrides costs it nothing more than before.
-- Locks: ACCESS EXCLUSIVE on guard.rules until the migration commits (a column with a constant
-- default: no rewrite, no scan). Only readers of the rules wait: the commit-time check of a
-- write that contradicts its appointments, detection and the DBA's commands; the everyday
-- booking does not read them.

ALTER TABLE guard.rules ADD COLUMN company_overrides integer NOT NULL DEFAULT 0;

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
        rule_id IN ('I3_appointment_flags')
    )
);

COMMENT ON TABLE guard.rule_company_stages IS
'A rule''s stage or mode for one company, overriding the rule''s own (guard rules stage|mode).';
