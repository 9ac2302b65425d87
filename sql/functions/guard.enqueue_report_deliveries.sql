-- Queue the daily report for `guard watch --report`: subscribe the channels (first time only:
-- from yesterday's report on, so switching reports on does not send every report ever stored),
-- then queue a delivery (guard.deliveries, kind report, subject the day as yyyymmdd) per channel
-- for every report day stored since the subscription.
-- Reads the stored days of the last 7 days only (the primary key's range), not the history: a
-- report stored later than that for an older day is not sent. Idempotent (ON CONFLICT), so any
-- number of dispatchers may run it. Returns the deliveries created.
CREATE OR REPLACE FUNCTION guard.enqueue_report_deliveries(channels text[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    added integer;
BEGIN
    INSERT INTO guard.report_subscriptions (channel)
    SELECT c.channel
    FROM unnest(enqueue_report_deliveries.channels) AS c (channel)
    ON CONFLICT (channel) DO NOTHING;

    INSERT INTO guard.deliveries (kind, subject, channel)
    SELECT 'report', to_char(d.report_date, 'YYYYMMDD')::bigint, s.channel
    FROM guard.report_subscriptions AS s
    INNER JOIN (
        SELECT DISTINCT r.report_date
        FROM guard.daily_reports AS r
        WHERE r.report_date >= (now() AT TIME ZONE 'UTC')::date - 7
    ) AS d ON s.first_report_date <= d.report_date
    WHERE s.channel = ANY(enqueue_report_deliveries.channels)
    ON CONFLICT (kind, subject, channel) DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added;
END;
$$;
