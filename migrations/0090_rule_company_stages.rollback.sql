-- Rollback of 0090_rule_company_stages: every company follows its rules' own stage and mode
-- again; the overrides are dropped with the table. The commit-time flag check and the deleted
-- company's clean-up read that table, so both are put back as they were at 0085b (a contradicting
-- write must still be judged, a company still deletable, on a database rolled back to here);
-- the functions only the rollout used go.
-- Locks: ACCESS EXCLUSIVE on guard.rule_company_stages (only the owner reads it) and on
-- guard.rules (the foreign key's trigger goes) until the rollback commits: the application's
-- reads of the rules wait for that instant. A rollback is a planned step, not a hot path.

CREATE OR REPLACE FUNCTION guard.check_flags_at_commit()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    call_ids bigint[];
    reasons text;
    rule_mode text;
    contradicting bigint[];
BEGIN
    WITH taken AS (
        DELETE FROM guard.flag_checks_at_commit AS p
        WHERE p.xact = pg_current_xact_id()
        RETURNING
            p.call_ids,
            CASE p.written_by
                WHEN 'insert' THEN 'a new call claimed a booking its appointments do not show'
                ELSE 'an update wrote booking flags that contradict the appointments'
            END AS reason
    )

    SELECT
        array_agg(DISTINCT x.id ORDER BY x.id),
        string_agg(DISTINCT t.reason, '; ' ORDER BY t.reason)
    INTO call_ids, reasons
    FROM taken AS t CROSS JOIN LATERAL unnest(t.call_ids) AS x (id);
    IF call_ids IS NULL THEN
        RETURN NULL;
    END IF;

    -- The transaction wrote these calls, so it holds their row locks (or created them): no
    -- other writer can change what they derive from before it commits.
    contradicting := ARRAY(SELECT f.id FROM guard.call_flags_to_correct(call_ids, FALSE) AS f);
    IF cardinality(contradicting) = 0 THEN
        RETURN NULL;
    END IF;
    SELECT r.mode INTO rule_mode
    FROM guard.rules AS r
    WHERE r.id = 'I3_appointment_flags' AND r.enabled;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF rule_mode = 'reject' THEN
        RAISE EXCEPTION 'booking flags of % call(s) contradict their appointments',
            cardinality(contradicting)
            USING
                ERRCODE = 'check_violation',
                HINT = 'appointment_made and the appointment link are derived from the '
                || 'appointments table (rule I3_appointment_flags is in reject mode); '
                || 'checked when the transaction commits';
    END IF;
    PERFORM guard.refresh_call_flags(contradicting, reasons);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION guard.forget_deleted_companies()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM guard.tenant_bindings AS b
    USING deleted_companies AS d
    WHERE b.company_id = d.id;
    UPDATE guard.alerts AS a
    SET
        status = 'resolved',
        resolved_at = now(),
        resolution = 'superseded',
        details = a.details || jsonb_build_object('resolved_because', 'company deleted')
    FROM deleted_companies AS d
    WHERE a.company_id = d.id AND a.status = 'open';
    UPDATE guard.review_items AS r
    SET
        status = 'dismissed',
        closed_by = 'booking-guard',
        note = 'the company was deleted'
    FROM deleted_companies AS d
    WHERE r.company_id = d.id AND r.status IN ('open', 'claimed');
    RETURN NULL;
END;
$$;

DROP TABLE guard.rule_company_stages;
ALTER TABLE guard.rules DROP COLUMN company_overrides;
DROP FUNCTION guard.recount_rule_company_overrides();
DROP FUNCTION guard.clear_rule_company_overrides();
DROP FUNCTION guard.stamp_rule_company_stage();
DROP FUNCTION guard.effective_rule_setting(text, bigint);
DROP FUNCTION guard.rollout_bucket(bigint);
