-- I7, the booking journal and the booking path.
-- Close a booking attempt as failed and take the rollback path, in one transaction: the call
-- is rolled back and queued for review by guard.rollback_booking (reason: the review reason;
-- context: what a reviewer needs), with the idempotency key added to the context. An attempt the
-- breaker refused (context {"queued": true}: the circuit was open, the calendar was not asked)
-- is closed as queued instead, so that no failure rate counts it as a failed booking. An attempt
-- whose outcome was unknown has its booking_outcome_unknown review item and alert closed (the
-- outcome is known now: no booking). An attempt that was settled already keeps its state (a
-- late failure of a recovered attempt must not unbook it); the rollback path runs anyway, so
-- the failure is never silent. Returns the review item's id. context.calendar_calls, when the
-- booking path passes it, is how many times it asked the calendar (guard_booking_retries_total);
-- anything but a whole number >= 0 is stored as NULL (not counted), never refused: refusing would
-- lose the rollback of a booking that already went wrong.
-- SECURITY DEFINER: the application may not write the journal, alerts or review items itself;
-- a session with a tenant set may only fail that tenant's attempts.
CREATE OR REPLACE FUNCTION guard.fail_booking_attempt(
    idempotency_key text, reason text, context jsonb DEFAULT '{}'
)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    attempt record;
    failure jsonb;
BEGIN
    IF fail_booking_attempt.idempotency_key IS NULL OR fail_booking_attempt.reason IS NULL THEN
        RAISE EXCEPTION 'fail_booking_attempt needs a key and a reason'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF fail_booking_attempt.context IS NOT NULL AND jsonb_typeof(fail_booking_attempt.context) <> 'object' THEN
        RAISE EXCEPTION 'fail_booking_attempt: context must be a JSON object, not %',
            jsonb_typeof(fail_booking_attempt.context)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT b.id, b.company_id, b.call_id, b.state, b.created_at INTO attempt
    FROM guard.booking_attempts AS b
    WHERE b.idempotency_key = fail_booking_attempt.idempotency_key
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no booking attempt with this idempotency key'
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM guard.assert_tenant(attempt.company_id);
    failure := coalesce(fail_booking_attempt.context, '{}')
        || jsonb_build_object('idempotency_key', fail_booking_attempt.idempotency_key);

    IF attempt.state IN ('calling', 'unknown') THEN
        UPDATE guard.booking_attempts AS b
        SET
            state = CASE
                WHEN fail_booking_attempt.context -> 'queued' = 'true'::jsonb THEN 'queued'
                ELSE 'failed'
            END,
            finished_at = now(),
            failure_reason = fail_booking_attempt.reason,
            booking_uid = fail_booking_attempt.context ->> 'booking_uid',
            calendar_calls = CASE
                WHEN (fail_booking_attempt.context ->> 'calendar_calls') ~ '^[0-9]{1,9}$'
                    THEN (fail_booking_attempt.context ->> 'calendar_calls')::integer
            END
        WHERE b.id = attempt.id AND b.created_at = attempt.created_at;
    END IF;
    IF attempt.state = 'unknown' THEN
        PERFORM guard.settle_unknown_booking_attempt(
            attempt.id, attempt.call_id, 'settled as failed: ' || fail_booking_attempt.reason
        );
    END IF;
    RETURN guard.rollback_booking(attempt.call_id, fail_booking_attempt.reason, failure);
END;
$$;
