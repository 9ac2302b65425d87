-- Record one post-booking validation and its latency: the one place guard.validation_metrics is
-- written (validate_booking, and the booking path after it rolled a failed booking back, which
-- took the first record with it). SECURITY DEFINER: the application may not write
-- validation_metrics itself; a session with a tenant set may only record for that tenant.
-- What it refuses, with an error and nothing written: a NULL argument; a call that does not
-- exist or is not the given company's; another company's appointment (unless it is on this
-- call: validate_booking's company_mismatch); a failure reason with ok, or none without it, or
-- one that is not a lower-case word (reasons are codes such as booking_uid_mismatch, never free
-- text); a latency that is negative, not finite or over an hour.
-- The appointment need not exist: the booking path records after its rollback removed it.
CREATE OR REPLACE FUNCTION guard.record_validation(
    company_id bigint,
    call_id bigint,
    appointment_id bigint,
    ok boolean,
    failure_reason text,
    latency_ms double precision
)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF record_validation.company_id IS NULL
        OR record_validation.call_id IS NULL
        OR record_validation.appointment_id IS NULL
        OR record_validation.ok IS NULL
        OR record_validation.latency_ms IS NULL THEN
        RAISE EXCEPTION 'record_validation needs a company, a call, an appointment, ok and a latency'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM guard.assert_tenant(record_validation.company_id);
    IF NOT EXISTS (
        SELECT FROM public.calls AS c
        WHERE c.id = record_validation.call_id AND c.company_id = record_validation.company_id
    ) THEN
        RAISE EXCEPTION 'call % of company % does not exist',
            record_validation.call_id, record_validation.company_id
            USING ERRCODE = 'no_data_found';
    END IF;
    IF EXISTS (
        SELECT FROM public.appointments AS a
        WHERE
            a.id = record_validation.appointment_id
            AND a.company_id IS DISTINCT FROM record_validation.company_id
            -- validate_booking's company_mismatch: the appointment is on this very call
            AND a.call_id IS DISTINCT FROM record_validation.call_id
    ) THEN
        RAISE EXCEPTION 'appointment % belongs to another company', record_validation.appointment_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF record_validation.ok = (record_validation.failure_reason IS NOT NULL)
        OR record_validation.failure_reason !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'a failed validation needs a reason code (lower-case word), a passed one none'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- 'NaN' compares greater than every number in PostgreSQL: the upper bound refuses it too.
    IF NOT record_validation.latency_ms BETWEEN 0 AND 3600000 THEN
        RAISE EXCEPTION 'latency_ms must be between 0 and 3600000 (got %)', record_validation.latency_ms
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    INSERT INTO guard.validation_metrics (
        company_id, call_id, appointment_id, ok, failure_reason, latency_ms
    ) VALUES (
        record_validation.company_id, record_validation.call_id, record_validation.appointment_id,
        record_validation.ok, record_validation.failure_reason, record_validation.latency_ms
    );
END;
$$;
