-- The calls as reporting sees them: every reporting column, and the phone numbers masked
-- (guard.mask_phone), as are phone numbers inside the failure reason, free text the application
-- writes (guard.mask_phone_numbers). The reporting role may read this view but not the raw
-- from_number and to_number of public.calls, so, like the other masking views (alerts_report,
-- review_items_report, correction_audit_report, the recent-failure check), it is NOT
-- security_invoker: a view running with the reader's rights could not read the raw numbers to
-- mask them. It runs with its owner's rights instead, and therefore filters by the reader's
-- companies itself (guard.visible_companies(): the companies bound to the reader's role, since
-- current_user in a view is still the reader; unbound: no rows); security_barrier keeps a
-- reader's own conditions from being evaluated before that filter. Times are instants
-- (timestamptz) whatever the application's column types: a `timestamp without time zone` column
-- is read in the application's zone (guard.app_time).
CREATE OR REPLACE VIEW guard.calls_report WITH (security_barrier = TRUE) AS
SELECT
    c.id,
    c.company_id,
    c.retell_call_id,
    guard.mask_phone(c.from_number) AS from_number_masked,
    guard.mask_phone(c.to_number) AS to_number_masked,
    c.status,
    c.direction,
    c.customer_id,
    c.customer_link_status,
    c.customer_link_method,
    c.customer_link_confidence,
    guard.app_time(c.customer_linked_at, (SELECT guard.app_time_zone())) AS customer_linked_at,
    c.session_outcome,
    c.appointment_made,
    c.appointment_link_status,
    guard.app_time(c.appointment_linked_at, (SELECT guard.app_time_zone())) AS appointment_linked_at,
    c.booking_id,
    c.booking_confirmed,
    c.booking_failed,
    guard.mask_phone_numbers(c.booking_failure_reason) AS booking_failure_reason,
    c.requires_manual_processing,
    guard.app_time(c.created_at, (SELECT guard.app_time_zone())) AS created_at,
    guard.app_time(c.updated_at, (SELECT guard.app_time_zone())) AS updated_at
FROM public.calls AS c
WHERE c.company_id = ANY((SELECT guard.visible_companies())::bigint[]);  -- noqa: CP03
