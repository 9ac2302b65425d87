-- I7, the booking journal and the booking path.
-- The booking journal: one row per attempt to book a call in the external calendar, committed
-- before the calendar is called, so that a booking the calendar made is never unknown to the
-- database (the process died, the database restarted or failed over between the calendar's
-- answer and the recording of the appointment).
--   state  calling    committed, the calendar is being asked
--          booked     the appointment was recorded in the same transaction that closed it
--          failed     the calendar failed, the booking did not validate, or the calendar had no
--                     booking for the key (the call was rolled back and queued for review)
--          queued     the breaker refused the call (the service's circuit open, or its bulkhead
--                     full): the calendar was not asked; the call was rolled back and queued for
--                     review, and no failure-rate counts it as a failure
--          unknown    still calling after booking_attempt_timeout_seconds: queued for review as
--                     booking_outcome_unknown (guard.reconcile)
--          recovered  an unknown attempt the calendar had booked: the appointment was recorded
-- Ready to be partitioned by month on created_at (PARTITION BY RANGE (created_at)): the primary
-- key contains created_at and nothing references the table or is referenced by it (no foreign
-- keys, like every guard table). Two unique indexes would then hold per partition only; see
-- docs/dba.md for what keeps them true across partitions.
CREATE TABLE guard.booking_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY,
    company_id bigint NOT NULL,
    call_id bigint NOT NULL,
    service_id bigint NOT NULL,
    idempotency_key text NOT NULL,
    state text NOT NULL DEFAULT 'calling' CHECK (
        state IN ('calling', 'booked', 'failed', 'queued', 'unknown', 'recovered')
    ),
    started_by text NOT NULL DEFAULT session_user,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    booking_uid text,
    appointment_id bigint,
    failure_reason text,
    -- how many times the booking path asked the calendar (retries included; 0: the breaker
    -- refused first); NULL when something else settled it (recover_attempts, a reconciliation,
    -- a person) or before 0100: guard_booking_retries_total counts from it
    calendar_calls integer CONSTRAINT booking_attempts_calendar_calls_check CHECK (calendar_calls >= 0),
    -- the OpenTelemetry trace the booking path began it in (docs/tracing.md); NULL without tracing
    trace_id text CONSTRAINT booking_attempts_trace_id_check CHECK (trace_id ~ '^[0-9a-f]{32}$'),
    CONSTRAINT booking_attempts_pkey PRIMARY KEY (id, created_at),
    CONSTRAINT booking_attempts_idempotency_key_key UNIQUE (idempotency_key),
    CONSTRAINT booking_attempts_settled_has_time CHECK (
        (state IN ('calling', 'unknown')) = (finished_at IS NULL)
    ),
    CONSTRAINT booking_attempts_booked_has_appointment CHECK (
        (state IN ('booked', 'recovered')) <= (appointment_id IS NOT NULL AND booking_uid IS NOT NULL)
    )
);

-- At most one unsettled attempt per call: a second booking of a call whose first attempt is in
-- flight, or whose outcome nobody knows yet, would make the calendar book twice.
CREATE UNIQUE INDEX booking_attempts_one_unsettled_per_call ON guard.booking_attempts (call_id)
WHERE state IN ('calling', 'unknown');

-- The reconcile job and detection look for attempts past their timeout.
CREATE INDEX booking_attempts_unsettled_idx ON guard.booking_attempts (created_at)
WHERE state IN ('calling', 'unknown');

CREATE INDEX booking_attempts_call_idx ON guard.booking_attempts (call_id);

-- Check recent_booking_failure finds a late failure (of an older call) by when it failed.
CREATE INDEX booking_attempts_failed_at_idx ON guard.booking_attempts (finished_at)
WHERE state = 'failed';

-- The counters of `guard metrics` count the attempts settled as queued likewise.
CREATE INDEX booking_attempts_queued_at_idx ON guard.booking_attempts (finished_at)
WHERE state = 'queued';

-- The booking counters of `guard metrics` (guard_bookings_total) count the attempts settled as
-- booked or recovered since guard.metric_watermark by when they settled (failed ones: the index
-- above), without reading the whole journal.
CREATE INDEX booking_attempts_succeeded_at_idx ON guard.booking_attempts (finished_at, state)
WHERE state IN ('booked', 'recovered');
