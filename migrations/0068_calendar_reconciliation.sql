-- 0068_calendar_reconciliation: the review reasons of the calendar's reconciliation
-- (guard.booking.reconcile_calendar, `guard calendar reconcile`; its functions are definitions
-- in sql/): calendar_only_booking (the calendar has an active booking the database cannot
-- record, priority 1) and missing_in_calendar (an active appointment the calendar no longer has,
-- priority 2), and an index by the calendar's booking uid for finding those items again.
-- A generated column's expression cannot be altered in PostgreSQL 15: priority is dropped and
-- added again (its queue index with it), which rewrites guard.review_items, as 0016 did. The
-- review queue is small (open items and recent history), so the rewrite, the re-checked CHECK (a
-- superset of the old one: every row passes) and the two index builds hold the lock for
-- milliseconds, under the migrator's lock_timeout and retries. guard.review_items_report reads
-- priority: it is dropped here and created again by the definitions step that follows in the
-- same transaction.
-- Locks: ACCESS EXCLUSIVE on guard.review_items and on the view guard.review_items_report until
-- the migration commits (the booking path's writes of review items wait for milliseconds).

-- (created again from sql/ by the definitions step of this transaction)
-- squawk-ignore ban-drop-view
DROP VIEW IF EXISTS guard.review_items_report;

ALTER TABLE guard.review_items
-- squawk-ignore ban-drop-constraint
DROP CONSTRAINT review_items_reason_check,
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT review_items_reason_check CHECK (
    reason IN (
        'validation_failure', 'calendar_booking_failure', 'customer_creation_failure',
        'service_not_found', 'other', 'booking_outcome_unknown', 'calendar_only_booking',
        'missing_in_calendar'
    )
);

-- squawk-ignore ban-drop-column
ALTER TABLE guard.review_items DROP COLUMN priority;

-- squawk-ignore adding-field-with-default
ALTER TABLE guard.review_items ADD COLUMN priority smallint GENERATED ALWAYS AS (
    CASE reason
        WHEN 'booking_outcome_unknown' THEN 0
        WHEN 'validation_failure' THEN 1
        WHEN 'calendar_only_booking' THEN 1
        WHEN 'calendar_booking_failure' THEN 2
        WHEN 'missing_in_calendar' THEN 2
        WHEN 'customer_creation_failure' THEN 3
        WHEN 'service_not_found' THEN 4
        ELSE 5
    END
) STORED;

-- squawk-ignore require-concurrent-index-creation
CREATE INDEX review_items_queue_idx ON guard.review_items (priority, created_at)
WHERE status = 'open';

-- squawk-ignore require-concurrent-index-creation
CREATE INDEX review_items_calendar_uid_idx ON guard.review_items (reason, (details ->> 'booking_uid'))
WHERE reason IN ('calendar_only_booking', 'missing_in_calendar');
