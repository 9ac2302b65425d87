-- guard.enqueue_review_notices: a call announces the items of its own channels and priorities
-- only, whatever else other dispatchers subscribed; an item opened exactly when the subscription
-- began is announced, one opened a microsecond before it is not; only open items are.
BEGIN;
SELECT plan(3);

INSERT INTO companies (id, name) VALUES (631, 'notices');
-- Subscriptions made an hour ago: channel a to priorities 1 and 5, channel b to priority 1.
INSERT INTO guard.review_notice_subscriptions (channel, priority, since) VALUES
('a', 1, now() - interval '1 hour'),
('a', 5, now() - interval '1 hour'),
('b', 1, now() - interval '1 hour');
INSERT INTO guard.review_items (company_id, reason, details, created_at) VALUES
(631, 'validation_failure', '{"n": 1}', now() - interval '1 hour'),
(631, 'other', '{"n": 2}', now() - interval '10 min'),
(631, 'validation_failure', '{"n": 3}', now() - interval '1 hour' - interval '1 microsecond');
-- items no longer open when the dispatcher looks: claimed by a reviewer, and resolved
INSERT INTO guard.review_items (company_id, reason, details, created_at, status, claimed_by, claimed_at, closed_at) VALUES
(631, 'validation_failure', '{"n": 4}', now() - interval '5 min', 'claimed', 'r', now() - interval '4 min', NULL),
(631, 'validation_failure', '{"n": 5}', now() - interval '5 min', 'resolved', NULL, NULL, now() - interval '4 min');

SELECT is(
    guard.enqueue_review_notices(ARRAY['a'], ARRAY[1]::smallint[]),
    1,
    'enqueue_review_notices: one notice, channel a, priority 1'
);
SELECT results_eq(
    $$SELECT n.channel, r.details ->> 'n' FROM guard.deliveries AS n
      INNER JOIN guard.review_items AS r ON n.kind = 'review_notice' AND n.subject = r.id
      WHERE r.company_id = 631 ORDER BY 1, 2$$,
    $$VALUES ('a', '1')$$,
    'enqueue_review_notices: not the priority-5 item of channel a, nor channel b''s, nor the '
    'item opened a microsecond before the subscription, nor an item claimed or resolved'
);
SELECT is(
    guard.enqueue_review_notices(ARRAY['a', 'b'], ARRAY[1, 5]::smallint[]),
    2,
    'enqueue_review_notices: asked for both, the two left are queued'
);

SELECT * FROM finish();
ROLLBACK;
