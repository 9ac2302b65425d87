-- What BI tools show for guard.review_items (docs/bi-columns.md is generated from these
-- comments).
COMMENT ON TABLE guard.review_items IS
'one row per problem queued for a person (a failed or unknown booking, an orphaned or cross-tenant appointment), queued by the booking path and reconcile, claimed and closed by reviewers';

COMMENT ON COLUMN guard.review_items.id IS 'the review item';
COMMENT ON COLUMN guard.review_items.company_id IS 'the company the problem belongs to';
COMMENT ON COLUMN guard.review_items.call_id IS 'the call concerned; NULL for an orphaned or cross-tenant appointment (see `appointment_id`)';
COMMENT ON COLUMN guard.review_items.appointment_id IS 'the appointment concerned, for an orphaned or cross-tenant appointment; NULL for a call''s problem';
COMMENT ON COLUMN guard.review_items.reason IS 'why: `booking_outcome_unknown`, `validation_failure`, `calendar_only_booking` (the calendar has an active booking the database could not record), `calendar_booking_failure`, `missing_in_calendar` (an active appointment the calendar no longer has), `customer_creation_failure`, `service_not_found` or `other` (`details.problem` may say more)';
COMMENT ON COLUMN guard.review_items.priority IS '0 `booking_outcome_unknown`, 1 `validation_failure` and `calendar_only_booking`, 2 `calendar_booking_failure` and `missing_in_calendar`, 3 `customer_creation_failure`, 4 `service_not_found`, 5 `other`; lowest first, then oldest';
COMMENT ON COLUMN guard.review_items.details IS 'jsonb: what the reviewer needs (the application''s context, idempotency key, `still_booked`, `problem`); phone numbers masked in `guard.review_items_report`';
COMMENT ON COLUMN guard.review_items.status IS '`open` (waiting), `claimed` (a reviewer has it), `resolved` (dealt with) or `dismissed` (nothing to do; see `false_positive`)';
COMMENT ON COLUMN guard.review_items.created_at IS 'when the problem was queued';
COMMENT ON COLUMN guard.review_items.claimed_by IS 'the label the reviewer gave when claiming (by default the user name); NULL if never claimed; phone numbers masked in `guard.review_items_report`';
COMMENT ON COLUMN guard.review_items.claimed_at IS 'when it was claimed; NULL if never claimed (an item may be closed straight from `open`)';
COMMENT ON COLUMN guard.review_items.closed_by IS 'who closed it: the reviewer''s label, `guard:review_sweep` (problem gone) or `booking-guard` (booking settled, company deleted); NULL until closed; phone numbers masked in `guard.review_items_report`';
COMMENT ON COLUMN guard.review_items.closed_at IS 'when it was resolved or dismissed; NULL while open or claimed';
COMMENT ON COLUMN guard.review_items.note IS 'why it was closed (a note is required to close); NULL until closed; phone numbers masked in `guard.review_items_report`';
COMMENT ON COLUMN guard.review_items.false_positive IS 'true: dismissed because detection was wrong (counts for the `false_positive_rate` KPI); only a `dismissed` item can be true';
COMMENT ON COLUMN guard.review_items.claimed_by_role IS 'the database login that claimed it, recorded by the database (cannot be set by hand); NULL if never claimed';
COMMENT ON COLUMN guard.review_items.closed_by_role IS 'the database login that closed it (a reviewer, or the login that ran the job or booking), recorded by the database; NULL until closed';
