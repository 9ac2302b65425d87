-- I7, the booking path for any client (docs/booking-path.md, step 1).
-- Start a booking attempt for a call (guard.begin_booking_attempt, whose outcomes it returns)
-- after waiting up to wait_seconds for another attempt of the same call that is still calling,
-- and make this transaction's commit durable: the attempt must survive a crash of the server
-- before the calendar is asked, whatever the server's synchronous_commit. The caller commits,
-- then calls the calendar with idempotency_key.
-- The wait holds no lock (the attempt being waited for must be able to record its booking on
-- the call): it polls the journal every 50 ms, each poll a fresh snapshot under READ COMMITTED;
-- under REPEATABLE READ or SERIALIZABLE it cannot see the other attempt finish and answers
-- in_flight at once. It holds its connection meanwhile, like any statement.
-- SECURITY DEFINER: the application may not read the journal; a session with a tenant set, or
-- a login bound to companies, may only book their calls (checked before waiting).
CREATE OR REPLACE FUNCTION guard.begin_booking(
    call_id bigint, service_id bigint, wait_seconds double precision DEFAULT 0, trace_id text DEFAULT NULL
)
RETURNS TABLE (
    outcome text, attempt_id bigint, idempotency_key text, appointment_id bigint, booking_uid text
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    call_company bigint;
    deadline timestamptz;
    timeout interval := make_interval(
        secs => (guard.setting('booking_attempt_timeout_seconds') #>> '{}')::integer
    );
BEGIN
    IF begin_booking.wait_seconds IS NULL OR NOT begin_booking.wait_seconds BETWEEN 0 AND 300 THEN
        RAISE EXCEPTION 'begin_booking: wait_seconds must be between 0 and 300, not %',
            coalesce(begin_booking.wait_seconds::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('synchronous_commit', 'on', TRUE);
    SELECT c.company_id INTO call_company FROM public.calls AS c WHERE c.id = begin_booking.call_id;
    IF FOUND THEN
        PERFORM guard.assert_tenant(call_company);
    END IF;
    deadline := clock_timestamp() + make_interval(secs => begin_booking.wait_seconds);
    LOOP
        WHILE clock_timestamp() < deadline AND EXISTS (
            SELECT
            FROM guard.booking_attempts AS b
            WHERE
                b.call_id = begin_booking.call_id
                AND b.state = 'calling'
                AND b.created_at >= now() - timeout
        ) LOOP
            PERFORM pg_sleep(0.05);
        END LOOP;
        BEGIN
            SELECT b.outcome, b.attempt_id, b.idempotency_key, b.appointment_id, b.booking_uid
            INTO outcome, attempt_id, idempotency_key, appointment_id, booking_uid
            FROM guard.begin_booking_attempt(
                begin_booking.call_id, begin_booking.service_id, begin_booking.trace_id
            ) AS b;
            -- An attempt committed while this one waited for the call's lock: give the lock
            -- back (the subtransaction's end releases it) and wait for that attempt instead.
            IF outcome = 'in_flight' AND clock_timestamp() < deadline THEN
                RAISE EXCEPTION 'another attempt is calling' USING ERRCODE = 'BG001';
            END IF;
            RETURN NEXT;
            RETURN;
        EXCEPTION WHEN SQLSTATE 'BG001' THEN
            NULL;
        END;
    END LOOP;
END;
$$;
