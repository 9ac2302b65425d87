-- A deleted company takes its tenant state with it, in the deleting statement: its bindings go
-- (a company created later with the same id is not visible to the logins of the old one), its
-- open alerts are resolved as superseded with the reason in their details, its open or
-- claimed review items are dismissed with a note saying why, and its rules' rollout overrides
-- go (guard.rule_company_stages: a company created later with the same id starts at the rules'
-- own stage and mode). History (closed items, resolved
-- alerts, audit, reports) is kept. Set-based over the statement's deleted rows (a transition
-- table), so deleting many companies costs one statement per table.
-- SECURITY DEFINER: it fires for the application role, which may delete companies but may not
-- write bindings, alerts or review items; it touches only the deleted companies' rows.
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
    DELETE FROM guard.rule_company_stages AS o
    USING deleted_companies AS d
    WHERE o.company_id = d.id;
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
