-- Record a failed send: count the attempt, keep the error, release the claim and schedule the
-- next attempt with exponential backoff (base * 2^(attempts - 1), capped), or give up as failed
-- after max_attempts. Returns the rows that gave up.
CREATE OR REPLACE FUNCTION guard.fail_alert_deliveries(
    delivery_channel text,
    alert_ids bigint[],
    error text,
    backoff_base_seconds double precision,
    backoff_max_seconds double precision,
    max_attempts integer
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    gave_up integer;
BEGIN
    UPDATE guard.alert_deliveries AS d
    SET
        attempts = d.attempts + 1,
        last_error = pg_catalog.left(fail_alert_deliveries.error, 500),
        claimed_by = NULL,
        claimed_until = NULL,
        status = CASE
            WHEN d.attempts + 1 >= fail_alert_deliveries.max_attempts THEN 'failed'
            ELSE 'pending'
        END,
        next_attempt_at = now() + make_interval(
            secs => least(
                fail_alert_deliveries.backoff_max_seconds,
                fail_alert_deliveries.backoff_base_seconds * power(2::double precision, d.attempts)
            )
        )
    WHERE
        d.channel = fail_alert_deliveries.delivery_channel
        AND d.alert_id = ANY(fail_alert_deliveries.alert_ids)
        AND d.status = 'pending';

    SELECT count(*)::integer INTO gave_up
    FROM guard.alert_deliveries AS d
    WHERE
        d.channel = fail_alert_deliveries.delivery_channel
        AND d.alert_id = ANY(fail_alert_deliveries.alert_ids)
        AND d.status = 'failed';
    RETURN gave_up;
END;
$$;
