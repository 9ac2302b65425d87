-- guard.complete_review_notices settles what a dispatcher sent or failed to send: only the
-- channel's pending notices of the items it names, sent (with the time) or failed (with the
-- error), their claim released; a notice sent or failed already, another channel's and another
-- item's are left as they were.
BEGIN;
SELECT plan(4);

INSERT INTO companies (id, name) VALUES (851, 'A');
INSERT INTO guard.review_items (id, company_id, reason)
OVERRIDING SYSTEM VALUE
SELECT
    g,
    851,
    'other'
FROM generate_series(8501, 8506) AS g;
INSERT INTO guard.review_notices (review_item_id, channel, status, sent_at, last_error, claimed_by, claimed_until) VALUES
(8501, 'done', 'pending', NULL, NULL, 'w1', now() + interval '30 s'),
(8502, 'done', 'sent', '2031-01-01 00:00:00+00', NULL, NULL, NULL),
(8503, 'done', 'failed', NULL, 'earlier error', NULL, NULL),
(8504, 'done', 'pending', NULL, NULL, 'w1', now() + interval '30 s'),
(8501, 'other', 'pending', NULL, NULL, 'w1', now() + interval '30 s'),
(8505, 'done', 'pending', NULL, NULL, 'w1', now() + interval '30 s'),
(8506, 'done', 'pending', NULL, NULL, 'w1', now() + interval '30 s');

SELECT is(
    guard.complete_review_notices('done', ARRAY[8501, 8502, 8503]::bigint[]),
    1,
    'complete_review_notices: one pending notice of the three named is sent'
);
SELECT is(
    guard.complete_review_notices('done', ARRAY[8504, 8502, 8503]::bigint[], 'smtp refused'),
    1,
    'complete_review_notices: one pending notice of the three named failed'
);
SELECT results_eq(
    $$SELECT review_item_id, channel, status, sent_at, last_error, claimed_by
      FROM guard.review_notices WHERE review_item_id BETWEEN 8501 AND 8506
      ORDER BY review_item_id, channel$$,
    $$VALUES
        (8501::bigint, 'done', 'sent', now(), NULL::text, NULL::text),
        (8501, 'other', 'pending', NULL, NULL, 'w1'),
        (8502, 'done', 'sent', '2031-01-01 00:00:00+00'::timestamptz, NULL, NULL),
        (8503, 'done', 'failed', NULL, 'earlier error', NULL),
        (8504, 'done', 'failed', NULL, 'smtp refused', NULL),
        (8505, 'done', 'pending', NULL, NULL, 'w1'),
        (8506, 'done', 'pending', NULL, NULL, 'w1')$$,
    'complete_review_notices: sent and failed are final; another channel''s and unnamed items'' '
    || 'notices keep their claims'
);
SELECT is(
    guard.complete_review_notices('done', ARRAY[]::bigint[]),
    0,
    'complete_review_notices: no item named, nothing settled'
);

SELECT * FROM finish();
ROLLBACK;
