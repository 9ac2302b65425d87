-- The review queue as a reporting login sees it: every column, with phone numbers masked in
-- the free text (details, which rollback_booking copies from the application, and the
-- reviewers' note and labels). The reporting role may not read those columns of
-- guard.review_items, so this view runs with its owner's rights and filters by the reader's
-- companies itself (guard.visible_companies()), as guard.calls_report does; security_barrier
-- keeps a reader's own conditions from running before that filter.
CREATE OR REPLACE VIEW guard.review_items_report WITH (security_barrier = TRUE) AS
SELECT
    r.id,
    r.company_id,
    r.call_id,
    r.appointment_id,
    r.reason,
    r.priority,
    guard.mask_phone_numbers_json(r.details) AS details,
    r.status,
    r.created_at,
    guard.mask_phone_numbers(r.claimed_by) AS claimed_by,
    r.claimed_at,
    guard.mask_phone_numbers(r.closed_by) AS closed_by,
    r.closed_at,
    guard.mask_phone_numbers(r.note) AS note,
    r.false_positive,
    r.claimed_by_role,
    r.closed_by_role
FROM guard.review_items AS r
WHERE r.company_id = ANY((SELECT guard.visible_companies())::bigint[]);  -- noqa: CP03
