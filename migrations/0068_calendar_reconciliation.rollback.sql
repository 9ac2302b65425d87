-- Rollback of 0068_calendar_reconciliation: the review reasons calendar_only_booking and
-- missing_in_calendar go. Their items become reason 'other' with `details.problem` naming the
-- reason they had. An open one whose call (or, without a call, appointment) already has an open
-- 'other' item, or an older open item of these two reasons, is dismissed into it instead, as the
-- rollback of 0016 does: one open item per call (or appointment) and reason. The functions that
-- queue them are definitions: the level rolled back to brings its own (docs/dba.md, "Rolling
-- back").
-- The review queue is small: the CHECK's scan, the rewrite and the index build below hold the
-- lock for milliseconds (as in the migration).

DROP VIEW IF EXISTS guard.review_items_report;

-- (the table is rewritten below under the same lock anyway)
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX guard.review_items_calendar_uid_idx;

UPDATE guard.review_items AS r
SET
    status = 'dismissed', closed_by = 'rollback 0068_calendar_reconciliation', closed_at = now(),
    note = 'merged into the open item of reason other: ' || r.reason || ', booking '
    || coalesce(r.details ->> 'booking_uid', '?')
WHERE
    r.reason IN ('calendar_only_booking', 'missing_in_calendar')
    AND r.status IN ('open', 'claimed')
    AND EXISTS (
        SELECT FROM guard.review_items AS o
        WHERE
            o.status IN ('open', 'claimed')
            AND (
                o.reason = 'other'
                OR (o.reason IN ('calendar_only_booking', 'missing_in_calendar') AND o.id < r.id)
            )
            AND (
                o.call_id = r.call_id
                OR (o.call_id IS NULL AND r.call_id IS NULL AND o.appointment_id = r.appointment_id)
            )
    );

UPDATE guard.review_items AS r
SET reason = 'other', details = r.details || jsonb_build_object('problem', r.reason)
WHERE r.reason IN ('calendar_only_booking', 'missing_in_calendar');

ALTER TABLE guard.review_items
DROP CONSTRAINT review_items_reason_check,
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT review_items_reason_check CHECK (
    reason IN (
        'validation_failure', 'calendar_booking_failure', 'customer_creation_failure',
        'service_not_found', 'other', 'booking_outcome_unknown'
    )
);

ALTER TABLE guard.review_items DROP COLUMN priority;

-- squawk-ignore adding-field-with-default
ALTER TABLE guard.review_items ADD COLUMN priority smallint GENERATED ALWAYS AS (
    CASE reason
        WHEN 'booking_outcome_unknown' THEN 0
        WHEN 'validation_failure' THEN 1
        WHEN 'calendar_booking_failure' THEN 2
        WHEN 'customer_creation_failure' THEN 3
        WHEN 'service_not_found' THEN 4
        ELSE 5
    END
) STORED;

-- squawk-ignore require-concurrent-index-creation
CREATE INDEX review_items_queue_idx ON guard.review_items (priority, created_at)
WHERE status = 'open';
