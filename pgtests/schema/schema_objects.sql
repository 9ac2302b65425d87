-- The spine: Booking Guard's schema, tables and settings exist and behave.
BEGIN;
SELECT plan(25);

SELECT has_schema('guard');
SELECT has_table('public', 'calls', 'calls exists');
SELECT has_table('public', 'appointments', 'appointments exists');
SELECT has_column('public', 'appointments', 'deleted_at', 'appointments are soft-deleted');
SELECT col_type_is('public', 'calls', 'customer_link_confidence', 'numeric(5,2)', 'confidence is 0-100.00');
SELECT col_type_is('public', 'calls', 'booking_details', 'jsonb', 'booking details are jsonb');
SELECT tables_are(
    'guard',
    ARRAY[
        'migration_checksums', 'definitions', 'baseline_objects', 'registry_rows', 'settings', 'rules', 'checks', 'alerts',
        'review_items',
        'breaker_state', 'breaker_events', 'validation_metrics', 'daily_reports',
        'correction_audit', 'jobs', 'job_runs', 'detection_runs', 'role_names', 'role_grants',
        'booking_attempts', 'tenant_bindings', 'delivery_skips', 'flag_checks_at_commit',
        'metric_totals', 'metric_watermark', 'review_notice_subscriptions', 'deliveries',
        'report_subscriptions', 'alert_digests', 'rule_company_stages', 'detection_queue'
    ]
);
SELECT has_index('public', 'appointments', 'guard_appointments_call_id_idx', 'call_id');
SELECT has_index('public', 'calls', 'guard_calls_created_at_idx', 'created_at');

-- Settings are typed and carry the design's defaults.
SELECT is(guard.setting('grace_period_seconds'), '30'::jsonb, 'grace period defaults to 30 s');
SELECT is(guard.setting('alert_throttle_seconds'), '300'::jsonb, 'throttle defaults to 5 min');
SELECT is(guard.setting('breaker_failure_threshold'), '3'::jsonb, 'breaker opens after 3');
SELECT is(guard.setting('default_customer_link_method'), '"phone_match"'::jsonb);
SELECT throws_ok(
    $$SELECT guard.setting('no_such_setting')$$,
    '42704',
    'unknown Booking Guard setting "no_such_setting"',
    'an unknown setting is an error, not a NULL'
);
SELECT throws_ok(
    $$UPDATE guard.settings SET value = '"soon"' WHERE key = 'grace_period_seconds'$$,
    '23514',
    NULL,
    'an integer setting refuses a string'
);
SELECT throws_ok(
    $$UPDATE guard.settings SET value = '2.5' WHERE key = 'grace_period_seconds'$$,
    '23514',
    NULL,
    'an integer setting refuses a fraction'
);
UPDATE guard.settings SET updated_at = '2000-01-01', value = '600'
WHERE key = 'grace_period_seconds';
SELECT ok(
    (
        SELECT updated_at > '2000-01-01' FROM guard.settings
        WHERE key = 'grace_period_seconds'
    ),
    'tuning a setting records when'
);

-- Review queue: priority comes from the reason; one open item per call and reason.
INSERT INTO guard.review_items (call_id, reason) VALUES
(1, 'validation_failure'), (1, 'calendar_booking_failure'), (2, 'other');
SELECT results_eq(
    $$SELECT priority::int FROM guard.review_items ORDER BY id$$,
    ARRAY[1, 2, 5],
    'priority follows the reason'
);
SELECT throws_ok(
    $$INSERT INTO guard.review_items (call_id, reason) VALUES (1, 'validation_failure')$$,
    '23505',
    NULL,
    'a second open item for the same call and reason is refused'
);
UPDATE guard.review_items SET status = 'resolved', closed_at = now(), closed_by = 'me', note = 'done'
WHERE call_id = 1 AND reason = 'validation_failure';
SELECT lives_ok(
    $$INSERT INTO guard.review_items (call_id, reason) VALUES (1, 'validation_failure')$$,
    'after resolution the same problem may be queued again'
);

-- Alerts: one open alert per fingerprint.
INSERT INTO guard.alerts (fingerprint, check_id, entity_type, entity_id, severity, message)
VALUES ('r:1', 'r', 'call', 1, 'high', 'x');
SELECT throws_ok(
    $$INSERT INTO guard.alerts (fingerprint, check_id, entity_type, entity_id, severity, message)
      VALUES ('r:1', 'r', 'call', 1, 'high', 'x')$$,
    '23505',
    NULL,
    'a second open alert with the same fingerprint is refused'
);
SELECT throws_ok(
    $$UPDATE guard.alerts SET status = 'resolved' WHERE fingerprint = 'r:1'$$,
    '23514',
    NULL,
    'a resolved alert must say when'
);

-- Rules and checks: one rule per invariant, every check belongs to a rule.
SELECT results_eq(
    $$SELECT invariant, count(*)::int FROM guard.rules WHERE invariant IS NOT NULL
      GROUP BY invariant ORDER BY invariant$$,
    $$VALUES ('I1', 1), ('I10', 1), ('I2', 1), ('I3', 1), ('I4', 1), ('I5', 1), ('I6', 1), ('I7', 1),
             ('I8', 1), ('I9', 1)$$,
    'each invariant has exactly one rule'
);
SELECT throws_ok(
    $$INSERT INTO guard.checks (id, rule_id, severity, description, remedy)
      VALUES ('made_up', 'no_such_rule', 'high', 'x', 'report')$$,
    '23503',
    NULL,
    'a check of no rule is refused'
);
SELECT throws_ok(
    $$DELETE FROM guard.rules WHERE id = 'I7_booking_failures'$$,
    '23503',
    NULL,
    'a rule that has checks cannot be removed'
);

SELECT * FROM finish();
ROLLBACK;
