-- What the dispatcher records of a channel's sends (guard.settle_deliveries: delivered, or
-- a failed attempt), on every state a delivery row can be in:
-- - only the channel's pending rows of the alerts named change; a row delivered, failed or
--   skipped already is final (its time, attempts and error stay), another channel's row and
--   another alert's row are not touched;
-- - an alert is delivered when none of its deliveries is left pending or failed (skipped counts
--   as done), and its first delivery time stays when a later channel completes;
-- - a failed send is retried until its attempts reach max_attempts, exactly: the attempt that
--   reaches it gives up; the wait doubles per attempt up to the cap.
BEGIN;
SELECT plan(10);

INSERT INTO guard.alerts (
    id, fingerprint, check_id, entity_type, severity, message, first_seen_at, last_seen_at,
    delivered_at
)
OVERRIDING SYSTEM VALUE
SELECT
    n,
    'delivery:' || n,
    'pgtap',
    'job',
    'high',
    'x',
    now() - interval '2 days',
    now() - interval '1 day',
    CASE WHEN n IN (10703, 10704, 10713) THEN now() - interval '1 day' END
FROM generate_series(10701, 10713) AS n;

INSERT INTO guard.deliveries (
    kind, subject, channel, status, attempts, delivered_at, last_error, claimed_by, claimed_until
) VALUES
-- settle_deliveries
('alert', 10701, 'email', 'pending', 2, NULL, 'timeout', 'worker-1', now() + interval '1 minute'),
('alert', 10702, 'email', 'failed', 5, NULL, 'gave up', NULL, NULL),
('alert', 10703, 'email', 'delivered', 1, now() - interval '1 day', NULL, NULL, NULL),
('alert', 10704, 'slack', 'delivered', 1, now() - interval '1 day', NULL, NULL, NULL),
('alert', 10704, 'email', 'pending', 0, NULL, NULL, NULL, NULL),
('alert', 10705, 'email', 'pending', 0, NULL, NULL, NULL, NULL),
('alert', 10705, 'slack', 'pending', 0, NULL, NULL, NULL, NULL),
('alert', 10706, 'email', 'pending', 0, NULL, NULL, NULL, NULL),
('alert', 10706, 'slack', 'skipped', 0, NULL, NULL, NULL, NULL),
('alert', 10707, 'email', 'pending', 0, NULL, NULL, NULL, NULL),
('alert', 10707, 'slack', 'failed', 5, NULL, 'gave up', NULL, NULL),
('alert', 10708, 'email', 'pending', 0, NULL, NULL, NULL, NULL),
-- settle_deliveries
('alert', 10709, 'email', 'pending', 2, NULL, NULL, 'worker-1', now() + interval '1 minute'),
('alert', 10710, 'email', 'pending', 3, NULL, NULL, NULL, NULL),
('alert', 10711, 'email', 'failed', 4, NULL, 'gave up', NULL, NULL),
('alert', 10712, 'email', 'pending', 0, NULL, NULL, NULL, NULL),
('alert', 10712, 'slack', 'pending', 0, NULL, NULL, NULL, NULL),
-- both: skipped by an operator (guard.skip_alert_deliveries, which marks the alert done)
('alert', 10713, 'email', 'skipped', 0, NULL, NULL, NULL, NULL);

CREATE TEMP TABLE before_sends AS
SELECT * FROM guard.deliveries
WHERE subject BETWEEN 10701 AND 10713;

SELECT is(
    guard.settle_deliveries(
        'alert', 'email', ARRAY[10701, 10702, 10703, 10704, 10705, 10706, 10707, 10713]::bigint[]
    ),
    5,
    'complete: the five pending email rows of the alerts named are marked'
);
SELECT results_eq(
    $$SELECT subject, channel, status, attempts, delivered_at = now(), last_error, claimed_by
      FROM guard.deliveries WHERE subject BETWEEN 10701 AND 10708 AND status = 'delivered'
        AND delivered_at = now()
      ORDER BY subject, channel$$,
    $$VALUES
        (10701::bigint, 'email'::text, 'delivered'::text, 3, TRUE, NULL::text, NULL::text),
        (10704, 'email', 'delivered', 1, TRUE, NULL, NULL),
        (10705, 'email', 'delivered', 1, TRUE, NULL, NULL),
        (10706, 'email', 'delivered', 1, TRUE, NULL, NULL),
        (10707, 'email', 'delivered', 1, TRUE, NULL, NULL)$$,
    'complete: each is delivered now, its attempt counted, its error and claim cleared'
);
SELECT is_empty(
    $$SELECT d.subject, d.channel FROM guard.deliveries AS d
      INNER JOIN before_sends AS b USING (subject, channel)
      WHERE d.subject BETWEEN 10701 AND 10713
        AND NOT (d.subject IN (10701, 10704, 10705, 10706, 10707) AND d.channel = 'email')
        AND (d.status, d.attempts, d.delivered_at, d.last_error)
        IS DISTINCT FROM (b.status, b.attempts, b.delivered_at, b.last_error)$$,
    'complete: rows failed, delivered or skipped already, another channel''s and another alert''s'
    || ' are as they were'
);
SELECT results_eq(
    $$SELECT id, delivered_at = now(), delivered_at IS NULL
      FROM guard.alerts WHERE id BETWEEN 10701 AND 10708 OR id = 10713 ORDER BY id$$,
    $$VALUES
        (10701::bigint, TRUE, FALSE),
        (10702, NULL::boolean, TRUE),
        (10703, FALSE, FALSE),
        (10704, FALSE, FALSE),
        (10705, NULL, TRUE),
        (10706, TRUE, FALSE),
        (10707, NULL, TRUE),
        (10708, NULL, TRUE),
        (10713, FALSE, FALSE)$$,
    'complete: an alert is delivered once no delivery is pending or failed (skipped is done); an'
    || ' alert delivered before keeps its time'
);
SELECT is(
    (
        SELECT delivered_at FROM guard.alerts
        WHERE id = 10704
    ),
    (
        SELECT delivered_at FROM before_sends
        WHERE subject = 10704 AND channel = 'slack'
    ),
    'complete: the alert delivered by slack a day ago still says so after email completes'
);

SELECT is(
    guard.settle_deliveries(
        'alert', 'email', ARRAY[10709, 10710, 10711, 10712, 10713]::bigint[], 'HTTP 500', 10, 25, 4
    ),
    1,
    'fail: the email rows of the alerts named that give up now, not the one given up before'
);
SELECT results_eq(
    $$SELECT subject, status, attempts, last_error, claimed_by,
             round(extract(epoch FROM next_attempt_at - now()))::int
      FROM guard.deliveries WHERE subject IN (10709, 10710, 10712) AND channel = 'email'
      ORDER BY subject$$,
    $$VALUES
        (10709::bigint, 'pending'::text, 3, 'HTTP 500'::text, NULL::text, 25),
        (10710, 'failed', 4, 'HTTP 500', NULL, 25),
        (10712, 'pending', 1, 'HTTP 500', NULL, 10)$$,
    'fail: below max_attempts it stays pending, the attempt that reaches it gives up; the wait'
    || ' is base * 2^attempts, at most the cap'
);
SELECT results_eq(
    $$SELECT subject, channel, status, attempts, last_error
      FROM guard.deliveries WHERE (subject = 10711 AND channel = 'email')
        OR (subject = 10712 AND channel = 'slack') OR (subject IN (10708, 10713) AND channel = 'email')
      ORDER BY subject, channel$$,
    $$VALUES (10708::bigint, 'email'::text, 'pending'::text, 0, NULL::text),
        (10711, 'email', 'failed', 4, 'gave up'),
        (10712, 'slack', 'pending', 0, NULL),
        (10713, 'email', 'skipped', 0, NULL)$$,
    'fail: a row that gave up before, a skipped one, another channel''s row and another alert''s'
    || ' pending row are as they were'
);
SELECT is(
    guard.settle_deliveries('alert', 'email', ARRAY[10712]::bigint[], 'HTTP 500', 10, 25, 4),
    0,
    'fail: nothing given up among the alerts named counts 0'
);
SELECT is(
    (
        SELECT round(extract(EPOCH FROM next_attempt_at - now()))::int FROM guard.deliveries
        WHERE subject = 10712 AND channel = 'email'
    ),
    20,
    'fail: the second failure waits twice the base'
);

SELECT * FROM finish();
ROLLBACK;
