-- Two pure functions judged on every combination of their inputs' kinds, not on examples:
-- - guard.booking_retry_outcome: every journal state (and NULL and a state it does not know)
--   with the calendar asked NULL, 0, 1, 2 or 3 times;
-- - guard.is_valid_customer_link: a customer or none, each link status (and NULL and one it does
--   not know), and each of linked_at, link_method and link_confidence present or NULL.
BEGIN;
SELECT plan(4);

-- The metric's label: settled (booked, failed, queued) and asked once: not_retried; asked more
-- than once: succeeded_after_retry when booked, exhausted otherwise; anything else: no label.
SELECT set_eq(
    $$SELECT s.state, c.calls, guard.booking_retry_outcome(s.state, c.calls)
      FROM unnest(ARRAY['booked', 'failed', 'queued', 'in_progress', 'recovered', 'outcome_unknown', 'other', NULL]) AS s (state)
      CROSS JOIN unnest(ARRAY[NULL, 0, 1, 2, 3]::integer []) AS c (calls)
      WHERE guard.booking_retry_outcome(s.state, c.calls) IS NOT NULL$$,
    $$VALUES
        ('booked', 1, 'not_retried'), ('booked', 2, 'succeeded_after_retry'),
        ('booked', 3, 'succeeded_after_retry'),
        ('failed', 1, 'not_retried'), ('failed', 2, 'exhausted'), ('failed', 3, 'exhausted'),
        ('queued', 1, 'not_retried'), ('queued', 2, 'exhausted'), ('queued', 3, 'exhausted')$$,
    'booking_retry_outcome: a label for a settled attempt the calendar was asked about, none otherwise'
);
SELECT is(
    (
        SELECT count(*)
        FROM unnest(ARRAY['booked', 'failed', 'queued', 'in_progress', 'recovered', 'outcome_unknown', 'other', NULL]) AS s (state)
        CROSS JOIN unnest(ARRAY[NULL, 0, 1, 2, 3]::integer[]) AS c (calls)
        WHERE guard.booking_retry_outcome(s.state, c.calls) IS NULL
    ),
    31::bigint,
    'booking_retry_outcome: the other 31 of the 40 combinations have no label'
);

-- A call's customer link is valid when it names a customer and is linked with its time, method
-- and confidence, or names none and is unlinked or anonymous; never NULL.
CREATE TEMPORARY TABLE link_cases AS
SELECT
    cu.customer_id,
    st.status,
    CASE WHEN t.has THEN timestamptz '2031-01-01 00:00:00+00' END AS linked_at,
    CASE WHEN m.has THEN 'phone' END AS link_method,
    CASE WHEN f.has THEN 0.9 END AS link_confidence
FROM unnest(ARRAY[1, NULL]::bigint[]) AS cu (customer_id)
CROSS JOIN unnest(ARRAY['linked', 'unlinked', 'anonymous', 'pending', NULL]) AS st (status)
CROSS JOIN unnest(ARRAY[TRUE, FALSE]) AS t (has)
CROSS JOIN unnest(ARRAY[TRUE, FALSE]) AS m (has)
CROSS JOIN unnest(ARRAY[TRUE, FALSE]) AS f (has);

SELECT set_eq(
    $$SELECT customer_id, status, linked_at IS NOT NULL AS has_time, link_method IS NOT NULL AS has_method,
             link_confidence IS NOT NULL AS has_confidence
      FROM link_cases
      WHERE guard.is_valid_customer_link(customer_id, status, linked_at, link_method, link_confidence)$$,
    $$SELECT 1::bigint AS customer_id, 'linked' AS status, TRUE AS has_time, TRUE AS has_method, TRUE AS has_confidence
      UNION ALL
      SELECT NULL::bigint, s, t, m, f
      FROM unnest(ARRAY['unlinked', 'anonymous']) AS s
      CROSS JOIN unnest(ARRAY[TRUE, FALSE]) AS t
      CROSS JOIN unnest(ARRAY[TRUE, FALSE]) AS m
      CROSS JOIN unnest(ARRAY[TRUE, FALSE]) AS f$$,
    'is_valid_customer_link: a customer linked with every detail, or no customer unlinked or anonymous'
);
SELECT is(
    (
        SELECT count(*) FROM link_cases
        WHERE guard.is_valid_customer_link(customer_id, status, linked_at, link_method, link_confidence) IS NULL
    ),
    0::bigint,
    'is_valid_customer_link: never NULL, whatever is missing'
);

SELECT * FROM finish();
ROLLBACK;
