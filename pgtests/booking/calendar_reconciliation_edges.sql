-- The calendar's reconciliation at its edges: guard.queue_missing_in_calendar refuses each
-- missing argument alone (an unknown moment of the listing or no listing at all would read as
-- "the calendar lost everything"), and an empty window, with nothing queued; its window is
-- [since, until) of the start, and only appointments created before the listing count (one
-- recorded at that very moment may have been booked after the calendar answered), and only
-- active ones; exactly max_items missing appointments are queued, one more is refused.
BEGIN;
SELECT plan(8);

INSERT INTO companies (id, name) VALUES (1, 'A');

SELECT throws_ok(
    $$SELECT * FROM guard.queue_missing_in_calendar(1, now(), NULL, now(), '{}')$$,
    '22004', NULL, 'queue_missing_in_calendar refuses a window without an end'
);
SELECT throws_ok(
    $$SELECT * FROM guard.queue_missing_in_calendar(1, now(), now() + interval '1 day', NULL, '{}')$$,
    '22004', NULL, 'queue_missing_in_calendar refuses an unknown moment of the listing'
);
SELECT throws_ok(
    $$SELECT * FROM guard.queue_missing_in_calendar(1, now(), now() + interval '1 day', now(), NULL)$$,
    '22004', NULL, 'queue_missing_in_calendar refuses no listing (NULL uids; an empty one is a listing)'
);
SELECT throws_ok(
    $$SELECT * FROM guard.queue_missing_in_calendar(1, now(), now() + interval '1 day', now(), '{}', NULL)$$,
    '22004', NULL, 'queue_missing_in_calendar refuses a NULL max_items'
);
SELECT throws_ok(
    $$SELECT * FROM guard.queue_missing_in_calendar(1, now(), now(), now(), '{}')$$,
    '22023', NULL, 'queue_missing_in_calendar refuses an empty window'
);
SELECT is(
    (SELECT count(*)::int FROM guard.review_items),
    0,
    'none of them queued anything'
);

-- the window [T, T + 1 day), listed 10 minutes ago (L)
CREATE TEMPORARY TABLE edge AS
SELECT
    date_trunc('hour', now()) + interval '1 day' AS t,
    now() - interval '10 min' AS l;
SET LOCAL session_replication_role = replica;
INSERT INTO appointments (
    id, company_id, calcom_v2_booking_id, status, deleted_at, starts_at, created_at
)
SELECT
    x.id,
    1,
    'u-' || x.id,
    CASE x.id WHEN 977 THEN 'cancelled' ELSE 'scheduled' END,
    CASE x.id WHEN 978 THEN now() END,
    e.t + x.starts,
    e.l + x.created
FROM edge AS e
CROSS JOIN (
    VALUES
    (971, interval '-1 microsecond', interval '-1 hour'),  -- before the window
    (972, interval '0', interval '-1 hour'),  -- at its start
    (973, interval '1 day -1 microsecond', interval '-1 hour'),  -- at its last moment
    (974, interval '1 day', interval '-1 hour'),  -- at its end
    (975, interval '1 hour', interval '0'),  -- created as the calendar was asked
    (976, interval '1 hour', interval '-1 microsecond'),  -- created just before
    (977, interval '2 hours', interval '-1 hour'),  -- cancelled
    (978, interval '2 hours', interval '-1 hour')  -- deleted
) AS x (id, starts, created);
SET LOCAL session_replication_role = origin;
SELECT throws_ok(
    $$SELECT q.* FROM edge AS e
      CROSS JOIN LATERAL guard.queue_missing_in_calendar(1, e.t, e.t + interval '1 day', e.l, '{}', 2) AS q$$,
    '54000', NULL,
    'queue_missing_in_calendar: three missing appointments with max_items 2 are refused'
);
SELECT results_eq(
    $$SELECT q.appointment_id, q.queued
      FROM edge AS e
      CROSS JOIN LATERAL guard.queue_missing_in_calendar(1, e.t, e.t + interval '1 day', e.l, '{}', 3) AS q
      ORDER BY q.appointment_id$$,
    $$VALUES (972::bigint, TRUE), (973, TRUE), (976, TRUE)$$,
    'queue_missing_in_calendar: the window holds its start and not its end; an appointment '
    'created at the listing''s moment, a cancelled or a deleted one is not compared; exactly '
    'max_items are queued'
);

SELECT * FROM finish();
ROLLBACK;
