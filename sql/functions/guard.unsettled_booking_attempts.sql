-- I7, the booking journal and the booking path.
-- The booking attempts whose outcome nobody knows, oldest first: still calling past
-- booking_attempt_timeout_seconds (or past older_than_seconds, when given), or marked unknown by
-- reconcile. What recover_attempts asks the application's calendar about. Only attempts
-- guard.assert_tenant would let the session touch: of the company it selected, if any, and of
-- the companies bound to its login, if it is bound.
-- SECURITY DEFINER: the application may not read the journal itself.
CREATE OR REPLACE FUNCTION guard.unsettled_booking_attempts(
    max_attempts integer DEFAULT 100, older_than_seconds integer DEFAULT NULL
)
RETURNS TABLE (
    attempt_id bigint, idempotency_key text, company_id bigint, call_id bigint, service_id bigint,
    state text, created_at timestamptz
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    timeout interval;
    login_companies bigint[] := guard.login_companies();
BEGIN
    IF unsettled_booking_attempts.max_attempts IS NULL OR unsettled_booking_attempts.max_attempts < 0 THEN
        RAISE EXCEPTION 'unsettled_booking_attempts needs max_attempts >= 0'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    timeout := make_interval(secs => coalesce(
        unsettled_booking_attempts.older_than_seconds,
        (guard.setting('booking_attempt_timeout_seconds') #>> '{}')::integer
    ));
    RETURN QUERY
    SELECT b.id, b.idempotency_key, b.company_id, b.call_id, b.service_id, b.state, b.created_at
    FROM guard.booking_attempts AS b
    WHERE
        (b.state = 'unknown' OR (b.state = 'calling' AND b.created_at < now() - timeout))
        AND (guard.current_company() IS NULL OR b.company_id = guard.current_company())
        AND (login_companies IS NULL OR b.company_id = ANY (login_companies))
    ORDER BY b.created_at, b.id
    LIMIT unsettled_booking_attempts.max_attempts;
END;
$$;
