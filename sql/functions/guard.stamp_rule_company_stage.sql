-- Who set a company's override, and when: the login and the time of the write, whatever the
-- statement says (a DBA's hand-written UPDATE included). And only for a company that exists:
-- an override written ahead of its company waited unseen and applied the day a
-- company with that id was created. No foreign key does this (sql/tables/guard.rule_company_stages.sql
-- says why); a company deleted later takes its rows with it (guard.forget_deleted_companies).
CREATE OR REPLACE FUNCTION guard.stamp_rule_company_stage()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- (a NULL company is the NOT NULL constraint's to refuse)
    IF (TG_OP = 'INSERT' OR NEW.company_id IS DISTINCT FROM OLD.company_id)
        AND NEW.company_id IS NOT NULL
        AND NOT EXISTS (SELECT FROM public.companies AS c WHERE c.id = NEW.company_id) THEN
        RAISE EXCEPTION 'company % does not exist: an override of rule % needs the company first',
            NEW.company_id, NEW.rule_id
            USING ERRCODE = 'foreign_key_violation', TABLE = 'rule_company_stages',
            SCHEMA = 'guard';
    END IF;
    NEW.set_by := session_user;
    NEW.set_at := now();
    RETURN NEW;
END;
$$;
