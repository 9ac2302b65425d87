-- Record a channel's report deliveries as sent (error NULL) or as failed for good (a report that
-- cannot be rendered: retrying cannot help), whoever holds the claim: the send happened. Only
-- pending deliveries change, so a second call marks nothing (sent once). Returns the rows marked.
CREATE OR REPLACE FUNCTION guard.complete_report_deliveries(
    delivery_channel text, report_dates date[], error text DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    marked integer;
BEGIN
    UPDATE guard.report_deliveries AS d
    SET
        status = CASE WHEN complete_report_deliveries.error IS NULL THEN 'sent' ELSE 'failed' END,
        sent_at = CASE WHEN complete_report_deliveries.error IS NULL THEN now() END,
        last_error = complete_report_deliveries.error,
        claimed_by = NULL,
        claimed_until = NULL
    WHERE
        d.channel = complete_report_deliveries.delivery_channel
        AND d.report_date = ANY(complete_report_deliveries.report_dates)
        AND d.status = 'pending';
    GET DIAGNOSTICS marked = ROW_COUNT;
    RETURN marked;
END;
$$;
