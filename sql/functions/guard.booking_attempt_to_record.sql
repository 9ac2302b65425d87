-- I7, the booking path for any client: what guard.record_booking needs to know of the attempt
-- an idempotency key names (its call, the call's company and customer, the service, the
-- attempt's state and trace), read for the application, which may not read the journal.
-- SECURITY DEFINER: a session with a tenant set, or a login bound to companies, may only read
-- their attempts. Refused with an error: a NULL or unknown key.
CREATE OR REPLACE FUNCTION guard.booking_attempt_to_record(idempotency_key text)
RETURNS TABLE (
    call_id bigint, company_id bigint, customer_id bigint, service_id bigint, state text, trace_id text
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF booking_attempt_to_record.idempotency_key IS NULL THEN
        RAISE EXCEPTION 'booking_attempt_to_record needs an idempotency key'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT b.call_id, b.company_id, c.customer_id, b.service_id, b.state, b.trace_id
    INTO call_id, company_id, customer_id, service_id, state, trace_id
    FROM guard.booking_attempts AS b
    INNER JOIN public.calls AS c ON b.call_id = c.id
    WHERE b.idempotency_key = booking_attempt_to_record.idempotency_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no booking attempt with this idempotency key'
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM guard.assert_tenant(booking_attempt_to_record.company_id);
    RETURN NEXT;
END;
$$;
