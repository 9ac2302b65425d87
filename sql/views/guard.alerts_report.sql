-- The alerts as a reporting login sees them: every column, with phone numbers masked inside
-- details (guard.mask_phone_numbers_json), which carries what detection copied from the
-- application's free text (a failure reason, a booking's details). The reporting role may read
-- every column of guard.alerts but details, so, like guard.calls_report, this view runs with its
-- owner's rights and filters by the reader's companies itself (guard.visible_companies(); an
-- alert without a company is nobody's tenant data and stays out, as the table's policy keeps
-- it out); security_barrier keeps a reader's own conditions from running before that filter.
CREATE OR REPLACE VIEW guard.alerts_report WITH (security_barrier = TRUE) AS
SELECT
    a.id,
    a.fingerprint,
    a.check_id,
    a.company_id,
    a.entity_type,
    a.entity_id,
    a.severity,
    a.message,
    guard.mask_phone_numbers_json(a.details) AS details,
    a.status,
    a.occurrences,
    a.first_seen_at,
    a.last_seen_at,
    a.resolved_at,
    a.resolution,
    a.delivered_at,
    a.observed_at
FROM guard.alerts AS a
WHERE a.company_id = ANY((SELECT guard.visible_companies())::bigint[]);  -- noqa: CP03
