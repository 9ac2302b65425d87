-- Detection latency counts from the commit that made a row bad (its last write), not from the
-- row's creation: an alert a detection pass opens keeps the offending call's last write
-- (guard.alerts.written_at) beside its creation (observed_at), and guard.kpis measures from it.
-- A call that claims a booking minutes after it began is bad from that write on; its grace period
-- counts from it too. The history pass (guard check --all) keeps neither.
BEGIN;
SELECT plan(6);

INSERT INTO companies (id, name) VALUES (1, 'A');
DELETE FROM guard.detection_queue;
DELETE FROM guard.alerts;

-- an existing bad row: created 10 minutes ago, its claim written 2 minutes ago (past the grace)
INSERT INTO calls (id, company_id, retell_call_id, direction, session_outcome, created_at, updated_at)
VALUES (
    17101, 1, 'c17101', 'inbound', 'appointment_booked',
    now() - interval '10 minutes', now() - interval '2 minutes'
);
SELECT is(guard.drain_detection_queue(10), 1, 'the claim was queued at commit and is checked');
SELECT results_eq(
    $$SELECT entity_id, observed_at, written_at FROM guard.alerts
      WHERE check_id = 'booked_without_appointment' AND status = 'open'$$,
    $$VALUES (17101::bigint, now() - interval '10 minutes', now() - interval '2 minutes')$$,
    'its alert keeps the call''s creation and its last write'
);
SELECT results_eq(
    $$SELECT current_value, sample_size FROM guard.kpis WHERE kpi = 'detection_latency_p95'$$,
    $$VALUES (120.00::numeric, 1::bigint)$$,
    'the KPI counts from the last write (120 s), not from the creation (600 s)'
);

-- an alert that knows no last write (opened before the column existed) counts from observed_at
UPDATE guard.alerts SET written_at = NULL
WHERE entity_id = 17101;
SELECT results_eq(
    $$SELECT current_value FROM guard.kpis WHERE kpi = 'detection_latency_p95'$$,
    $$VALUES (600.00::numeric)$$,
    'without a last write the KPI falls back to observed_at'
);

-- a windowed pass opens it the same way
UPDATE guard.alerts SET status = 'resolved', resolved_at = now(), resolution = 'manual';
SELECT opened FROM guard.run_detection(now() - interval '1 hour', NULL)
WHERE check_id = 'booked_without_appointment';
SELECT results_eq(
    $$SELECT written_at FROM guard.alerts
      WHERE check_id = 'booked_without_appointment' AND status = 'open'$$,
    $$VALUES (now() - interval '2 minutes')$$,
    'a windowed pass keeps the last write too'
);

-- the history pass (guard check --all) reads old rows: no detection latency
UPDATE guard.alerts SET status = 'resolved', resolved_at = now(), resolution = 'manual';
SELECT opened FROM guard.detect_between(now() - interval '1 day', now() + interval '1 s')
WHERE check_id = 'booked_without_appointment';
SELECT results_eq(
    $$SELECT observed_at, written_at FROM guard.alerts
      WHERE check_id = 'booked_without_appointment' AND status = 'open'$$,
    $$VALUES (NULL::timestamptz, NULL::timestamptz)$$,
    'a history batch keeps neither'
);

SELECT * FROM finish();
ROLLBACK;
