-- Hand one channel's pending report deliveries to one dispatcher for a lease: SKIP LOCKED and the
-- lease (claimed_by, claimed_until) as in guard.claim_alert_deliveries, so two dispatchers never
-- send one report; a claim whose send failed, or whose dispatcher died, is due again when its
-- lease ends. Returns the report days, oldest first; the dispatcher reads each day's rows from
-- guard.daily_report_view, as `guard report` does.
CREATE OR REPLACE FUNCTION guard.claim_report_deliveries(
    delivery_channel text, worker text, max_rows integer, lease_seconds double precision
)
RETURNS TABLE (report_date date)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    UPDATE guard.report_deliveries AS d
    SET
        claimed_by = claim_report_deliveries.worker,
        claimed_until = now() + make_interval(secs => claim_report_deliveries.lease_seconds)
    WHERE
        d.channel = claim_report_deliveries.delivery_channel
        AND d.report_date = ANY(ARRAY(
            SELECT q.report_date
            FROM guard.report_deliveries AS q
            WHERE
                q.channel = claim_report_deliveries.delivery_channel
                AND q.status = 'pending'
                AND (q.claimed_until IS NULL OR q.claimed_until < now())
            ORDER BY q.report_date
            LIMIT claim_report_deliveries.max_rows
            FOR UPDATE SKIP LOCKED
        ))
    RETURNING d.report_date;
END;
$$;
