-- The automatic corrections as a reporting login sees them: every column, with phone numbers
-- masked in before and after (a copy of the corrected row, the application's free text
-- included). The reporting role may not read those two columns of guard.correction_audit, so
-- this view runs with its owner's rights and filters by the reader's companies itself
-- (guard.visible_companies()), as guard.calls_report does; security_barrier keeps a reader's
-- own conditions from running before that filter.
CREATE OR REPLACE VIEW guard.correction_audit_report WITH (security_barrier = TRUE) AS
SELECT
    a.id,
    a.rule_id,
    a.company_id,
    a.entity_type,
    a.entity_id,
    guard.mask_phone_numbers_json(a.before) AS before,
    guard.mask_phone_numbers_json(a.after) AS after,
    a.reason,
    a.actor,
    a.corrected_at
FROM guard.correction_audit AS a
WHERE a.company_id = ANY((SELECT guard.visible_companies())::bigint[]);  -- noqa: CP03
