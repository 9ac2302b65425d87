-- Record a channel's deliveries of one kind (whoever holds the claim: the send happened or was
-- tried), each an attempt. error NULL: delivered; an alert then delivered or skipped on every
-- channel is closed (guard.close_delivered_alerts). Else a failed attempt: the error is kept,
-- the claim released, and the next attempt due after exponential backoff (base *
-- 2^(attempts - 1), capped at backoff_max_seconds), or, at max_attempts (by default the first:
-- a subject that cannot be rendered, which retrying cannot help), the delivery fails for good.
-- Only pending rows change, so a second call marks nothing (delivered once). Returns the rows
-- delivered, or those that failed for good.
CREATE OR REPLACE FUNCTION guard.settle_deliveries(
    delivery_kind text,
    delivery_channel text,
    subjects bigint[],
    error text DEFAULT NULL,
    backoff_base_seconds double precision DEFAULT 0,
    backoff_max_seconds double precision DEFAULT 0,
    max_attempts integer DEFAULT 1
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    marked integer;
BEGIN
    WITH settled AS (
        UPDATE guard.deliveries AS d
        SET
            status = CASE
                WHEN settle_deliveries.error IS NULL THEN 'delivered'
                WHEN d.attempts + 1 >= settle_deliveries.max_attempts THEN 'failed'
                ELSE 'pending'
            END,
            delivered_at = CASE WHEN settle_deliveries.error IS NULL THEN now() END,
            attempts = d.attempts + 1,
            last_error = pg_catalog.left(settle_deliveries.error, 500),
            claimed_by = NULL,
            claimed_until = NULL,
            next_attempt_at = CASE
                WHEN settle_deliveries.error IS NULL THEN d.next_attempt_at
                ELSE now() + make_interval(
                    secs => least(
                        settle_deliveries.backoff_max_seconds,
                        settle_deliveries.backoff_base_seconds
                        * power(2::double precision, d.attempts)
                    )
                )
            END
        WHERE
            d.kind = settle_deliveries.delivery_kind
            AND d.channel = settle_deliveries.delivery_channel
            AND d.subject = ANY(settle_deliveries.subjects)
            AND d.status = 'pending'
        RETURNING d.status
    )

    SELECT count(*) FILTER (WHERE s.status <> 'pending')::integer INTO marked FROM settled AS s;
    IF settle_deliveries.delivery_kind = 'alert' AND settle_deliveries.error IS NULL THEN
        PERFORM guard.close_delivered_alerts(settle_deliveries.subjects);
    END IF;
    RETURN marked;
END;
$$;
