-- `guard watch --report`, `--digest` and `--min-severity` in SQL: a stored report is queued once
-- per subscribed channel from yesterday on, claimed by one dispatcher (SKIP LOCKED and a lease)
-- and marked sent once; a digest claims only alerts opened before its period began and records
-- the period with the deliveries it marks; a channel's minimum severity skips what is below it
-- and records the skip.
BEGIN;
SELECT plan(22);

INSERT INTO guard.daily_reports (
    report_date, company_id, total_calls, inconsistent_calls, inconsistency_rate_pct,
    auto_corrected, manual_reviews, open_review_items
)
SELECT
    (now() AT TIME ZONE 'UTC')::date - g,
    1,
    10,
    0,
    0,
    0,
    0,
    0
FROM generate_series(1, 3) AS g;

-- Reports
SELECT is(
    guard.enqueue_report_deliveries(ARRAY['email', 'webhook']), 2,
    'yesterday''s report is queued once per channel, the older ones not'
);
SELECT is(
    (SELECT min(first_report_date) FROM guard.report_subscriptions),
    (now() AT TIME ZONE 'UTC')::date - 1,
    'a subscription starts with yesterday''s report'
);
SELECT is(guard.enqueue_report_deliveries(ARRAY['email', 'webhook']), 0, 'queued once');
SELECT is(
    (SELECT array_agg(r.subject) FROM guard.claim_deliveries('report', 'email', 'w1', 10, 60) AS r),
    ARRAY[to_char((now() AT TIME ZONE 'UTC')::date - 1, 'YYYYMMDD')::bigint],
    'a dispatcher claims the channel''s report'
);
SELECT is(
    (SELECT count(*)::int FROM guard.claim_deliveries('report', 'email', 'w2', 10, 60)),
    0,
    'a second dispatcher gets nothing while the lease lasts'
);
SELECT is(
    (SELECT count(*)::int FROM guard.claim_deliveries('report', 'webhook', 'w2', 10, 60)),
    1,
    'the other channel is claimed on its own'
);
SELECT is(
    guard.settle_deliveries('report', 'email', ARRAY[to_char((now() AT TIME ZONE 'UTC')::date - 1, 'YYYYMMDD')::bigint]), 1,
    'marked sent'
);
SELECT is(
    guard.settle_deliveries('report', 'email', ARRAY[to_char((now() AT TIME ZONE 'UTC')::date - 1, 'YYYYMMDD')::bigint]), 0,
    'and only once'
);
SELECT is(
    (
        SELECT status FROM guard.deliveries
        WHERE kind = 'report' AND channel = 'webhook'
    ), 'pending',
    'the other channel''s delivery is still pending'
);
SELECT is(
    guard.settle_deliveries('report', 'webhook', ARRAY[to_char((now() AT TIME ZONE 'UTC')::date - 1, 'YYYYMMDD')::bigint], 'cannot render'),
    1,
    'a report that cannot be rendered is marked failed'
);
SELECT is(
    (
        SELECT last_error FROM guard.deliveries
        WHERE kind = 'report' AND channel = 'webhook' AND status = 'failed'
    ),
    'cannot render',
    'with its reason'
);

-- Digests
INSERT INTO guard.alerts (
    id, fingerprint, check_id, company_id, entity_type, entity_id, severity, message, first_seen_at,
    last_seen_at
) OVERRIDING SYSTEM VALUE VALUES
(901, 'd1', 'booked_without_appointment', 1, 'call', 1, 'critical', 'm', now() - interval '2 days', now()),
(902, 'd2', 'booked_without_appointment', 1, 'call', 2, 'medium', 'm', now() - interval '2 days', now()),
(903, 'd3', 'booked_without_appointment', 1, 'call', 3, 'low', 'm', now() + interval '1 hour', now());
SELECT is((guard.enqueue_alert_deliveries(ARRAY['email'])).added, 3, 'three deliveries queued');
SELECT is(
    (SELECT array_agg(d.subject ORDER BY d.subject) FROM guard.claim_deliveries('alert', 'email', 'w1', 100, 60, 24) AS d),
    ARRAY[901, 902]::bigint[],
    'the digest claims the alerts opened before its period began, not the current period''s'
);
SELECT is(
    (SELECT DISTINCT d.period_end FROM guard.claim_deliveries('alert', 'email', 'w2', 100, 60, 24) AS d),
    NULL,
    'a second dispatcher gets nothing while the lease lasts'
);
SELECT is(
    (
        SELECT DISTINCT extract(EPOCH FROM d.period_end)::bigint % 3600
        FROM guard.claim_deliveries('alert', 'webhook', 'w1', 100, 60, 1) AS d
    ),
    NULL,
    'a channel with nothing queued claims nothing'
);
SELECT throws_ok(
    $$SELECT * FROM guard.claim_deliveries('alert', 'email', 'w1', 100, 60, 0)$$,
    '22023',
    NULL,
    'a period of no hours is refused'
);
SELECT is(
    guard.complete_alert_digest('email', '2026-01-02 00:00+00', ARRAY[901, 902]::bigint[]), 2,
    'the digest''s deliveries are marked delivered'
);
SELECT is(
    (
        SELECT (alerts, messages)::text FROM guard.alert_digests
        WHERE channel = 'email'
    ),
    '(2,1)',
    'and the period recorded with them'
);

-- Minimum severity
SELECT throws_ok(
    $$SELECT guard.skip_alert_deliveries_below('email', 'urgent', 't')$$,
    '22023',
    NULL,
    'an unknown severity is refused'
);
INSERT INTO guard.alerts (
    id, fingerprint, check_id, company_id, entity_type, entity_id, severity, message
) OVERRIDING SYSTEM VALUE VALUES
(911, 's1', 'booked_without_appointment', 1, 'call', 11, 'high', 'm'),
(912, 's2', 'booked_without_appointment', 1, 'call', 12, 'medium', 'm');
SELECT guard.enqueue_alert_deliveries(ARRAY['webhook']);
SELECT is(
    guard.skip_alert_deliveries_below('webhook', 'high', 'pgtap'), 2,
    'below high: the medium alert and the low one of the current digest period are skipped'
);
SELECT is(
    (
        SELECT array_agg(subject ORDER BY subject) FROM guard.deliveries
        WHERE channel = 'webhook' AND status = 'pending'
    ),
    ARRAY[911]::bigint[],
    'the high one (the minimum) stays pending'
);
SELECT is(
    (SELECT (channels, deliveries, below_severity, skipped_by)::text FROM guard.delivery_skips),
    '({webhook},2,high,pgtap)',
    'the skip is recorded'
);

SELECT * FROM finish();
ROLLBACK;
