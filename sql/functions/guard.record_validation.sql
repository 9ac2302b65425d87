-- Record one post-booking validation and its latency: the one place guard.validation_metrics is
-- written (validate_booking, and the booking path after it rolled a failed booking back, which
-- took the first record with it). SECURITY DEFINER: the application may not write
-- validation_metrics itself; a session with a tenant set may only record for that tenant.
CREATE FUNCTION guard.record_validation(
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
    PERFORM guard.assert_tenant(record_validation.company_id);
    INSERT INTO guard.validation_metrics (
        company_id, call_id, appointment_id, ok, failure_reason, latency_ms
    ) VALUES (
        record_validation.company_id, record_validation.call_id, record_validation.appointment_id,
        record_validation.ok, record_validation.failure_reason, record_validation.latency_ms
    );
END;
$$;
