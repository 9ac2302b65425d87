-- guard.enqueue_report_deliveries reads the stored report days of the last 7 days: a report of
-- exactly 7 days ago is queued for a channel subscribed before it, one of 8 days ago is not.
BEGIN;
SELECT plan(2);

DELETE FROM guard.deliveries;
DELETE FROM guard.report_subscriptions;
INSERT INTO guard.report_subscriptions (channel, first_report_date)
VALUES ('email', (now() AT TIME ZONE 'UTC')::date - 30);
INSERT INTO guard.daily_reports (
    report_date, company_id, total_calls, inconsistent_calls, inconsistency_rate_pct,
    auto_corrected, manual_reviews, open_review_items
)
SELECT
    (now() AT TIME ZONE 'UTC')::date - g,
    1261,
    10,
    0,
    0,
    0,
    0,
    0
FROM generate_series(6, 8) AS g;

SELECT is(guard.enqueue_report_deliveries(ARRAY['email']), 2, 'two report days are queued');
SELECT is(
    (
        SELECT array_agg(subject ORDER BY subject) FROM guard.deliveries
        WHERE kind = 'report'
    ),
    ARRAY[
        to_char((now() AT TIME ZONE 'UTC')::date - 7, 'YYYYMMDD')::bigint,
        to_char((now() AT TIME ZONE 'UTC')::date - 6, 'YYYYMMDD')::bigint
    ],
    'the report of exactly 7 days ago is queued, the one of 8 days ago is not'
);

SELECT * FROM finish();
ROLLBACK;
