-- Work for a person: one open item per call and reason, priority derived from the reason. A
-- booking whose outcome is unknown (booking_outcome_unknown: the calendar may hold a booking the
-- database does not know) comes first, before every other reason. The calendar's reconciliation
-- (guard.reconcile_calendar_booking, guard.queue_missing_in_calendar) queues what it may not
-- correct: calendar_only_booking (the calendar has an active booking the database cannot record:
-- a customer expects an appointment nobody here knows of, as urgent as a failed validation) and
-- missing_in_calendar (an active appointment the calendar no longer has: the database promises an
-- appointment the calendar will not keep, as urgent as a failed calendar booking).
-- claimed_by and closed_by are free-text labels the reviewer gives; claimed_by_role and
-- closed_by_role are the database logins that claimed and closed the item, set by the database
-- (guard.stamp_review_actor), never by the statement.

CREATE TABLE guard.review_items (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id bigint,
    call_id bigint,
    appointment_id bigint,
    reason text NOT NULL CHECK (
        reason IN (
            'validation_failure', 'calendar_booking_failure', 'customer_creation_failure',
            'service_not_found', 'other', 'booking_outcome_unknown', 'calendar_only_booking',
            'missing_in_calendar'
        )
    ),
    priority smallint GENERATED ALWAYS AS (
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
    ) STORED,
    details jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'open' CHECK (
        status IN ('open', 'claimed', 'resolved', 'dismissed')
    ),
    created_at timestamptz NOT NULL DEFAULT now(),
    claimed_by text,
    claimed_at timestamptz,
    closed_by text,
    closed_at timestamptz,
    note text,
    false_positive boolean NOT NULL DEFAULT FALSE,
    claimed_by_role text,
    closed_by_role text,
    CONSTRAINT review_items_claim_is_complete CHECK (
        (status = 'claimed') <= (claimed_by IS NOT NULL AND claimed_at IS NOT NULL)
    ),
    CONSTRAINT review_items_close_is_complete CHECK (
        (status IN ('resolved', 'dismissed')) = (closed_at IS NOT NULL)
    )
);

CREATE UNIQUE INDEX review_items_one_open_per_call_reason ON guard.review_items (call_id, reason)
WHERE status IN ('open', 'claimed') AND call_id IS NOT NULL;

CREATE UNIQUE INDEX review_items_one_open_per_appointment_reason
ON guard.review_items (appointment_id, reason)
WHERE status IN ('open', 'claimed') AND call_id IS NULL AND appointment_id IS NOT NULL;

CREATE INDEX review_items_queue_idx ON guard.review_items (priority, created_at)
WHERE status = 'open';

-- The daily report counts the items created on its day and those still open or claimed per
-- company: each on an index, so that a report reads no closed item of earlier days.
CREATE INDEX review_items_created_at_idx ON guard.review_items (created_at);

CREATE INDEX review_items_unsettled_idx ON guard.review_items (company_id)
WHERE status IN ('open', 'claimed');

-- The calendar's reconciliation finds its items by the calendar's booking uid (an item a person
-- closed is not opened again for the same booking), whatever their status.
CREATE INDEX review_items_calendar_uid_idx ON guard.review_items (reason, (details ->> 'booking_uid'))
WHERE reason IN ('calendar_only_booking', 'missing_in_calendar');
