-- guard.enforce_review_trail, every transition from every state, as plain UPDATEs (what any SQL
-- a reviewer, a job or the owner runs meets): open -> claimed -> resolved | dismissed, or
-- open -> resolved | dismissed; nothing else, and nothing of the trail changes outside a
-- transition. Refusals are check_violation (23514).
BEGIN;
SELECT plan(29);

INSERT INTO companies (id, name) VALUES (621, 'trail');
INSERT INTO guard.review_items (company_id, reason, details)
SELECT
    621,
    'other',
    jsonb_build_object('n', n)
FROM generate_series(1, 6) AS n;
CREATE TEMPORARY TABLE item AS
SELECT
    (details ->> 'n')::integer AS n,
    id
FROM guard.review_items
WHERE company_id = 621;
CREATE FUNCTION pg_temp.item(n integer) RETURNS bigint LANGUAGE sql AS $$
    SELECT id FROM item WHERE item.n = $1
$$;

-- From open: what is refused.
SELECT throws_ok(
    format($$UPDATE guard.review_items SET claimed_by = 'ann' WHERE id = %s$$, pg_temp.item(1)),
    '23514', NULL, 'open: a claimed_by label without claiming is refused'
);
SELECT throws_ok(
    format($$UPDATE guard.review_items SET note = 'n' WHERE id = %s$$, pg_temp.item(1)),
    '23514', NULL, 'open: a note without closing is refused'
);
SELECT throws_ok(
    format($$UPDATE guard.review_items SET claimed_at = now() WHERE id = %s$$, pg_temp.item(1)),
    '23514', NULL, 'open: a claimed_at without claiming is refused'
);
SELECT throws_ok(
    format($$UPDATE guard.review_items SET status = 'claimed' WHERE id = %s$$, pg_temp.item(1)),
    '23514', NULL, 'open -> claimed without a claimed_by label is refused'
);
SELECT throws_ok(
    format($$UPDATE guard.review_items SET status = 'claimed', claimed_by = ' ' WHERE id = %s$$, pg_temp.item(1)),
    '23514', NULL, 'open -> claimed with a blank label is refused'
);
SELECT throws_ok(
    format(
        $$UPDATE guard.review_items SET status = 'claimed', claimed_by = 'ann',
          claimed_at = now() - interval '1 hour' WHERE id = %s$$,
        pg_temp.item(1)
    ),
    '23514', NULL, 'open -> claimed with a forged claimed_at is refused'
);
SELECT throws_ok(
    format(
        $$UPDATE guard.review_items SET status = 'claimed', claimed_by = 'ann', note = 'x'
          WHERE id = %s$$,
        pg_temp.item(1)
    ),
    '23514', NULL, 'open -> claimed that also writes a note is refused'
);
SELECT throws_ok(
    format($$UPDATE guard.review_items SET status = 'resolved' WHERE id = %s$$, pg_temp.item(1)),
    '23514', NULL, 'open -> resolved without a note is refused'
);
SELECT throws_ok(
    format(
        $$UPDATE guard.review_items SET status = 'resolved', note = 'x', false_positive = TRUE
          WHERE id = %s$$,
        pg_temp.item(1)
    ),
    '23514', NULL, 'open -> resolved as a false positive is refused (only dismissed can be)'
);
SELECT throws_ok(
    format(
        $$UPDATE guard.review_items SET status = 'resolved', note = 'x',
          closed_at = now() - interval '1 minute' WHERE id = %s$$,
        pg_temp.item(1)
    ),
    '23514', NULL, 'open -> resolved with a forged closed_at is refused'
);
SELECT throws_ok(
    format(
        $$UPDATE guard.review_items SET status = 'resolved', note = 'x', claimed_by = 'ann'
          WHERE id = %s$$,
        pg_temp.item(1)
    ),
    '23514', NULL, 'open -> resolved that also claims is refused'
);
-- From open: what is let through.
SELECT lives_ok(
    format($$UPDATE guard.review_items SET details = '{"n": 1, "more": true}' WHERE id = %s$$, pg_temp.item(1)),
    'open: a column outside the trail may change'
);
SELECT lives_ok(
    format($$UPDATE guard.review_items SET status = 'claimed', claimed_by = 'ann' WHERE id = %s$$, pg_temp.item(1)),
    'open -> claimed with a label'
);
SELECT lives_ok(
    format($$UPDATE guard.review_items SET status = 'resolved', note = 'fixed' WHERE id = %s$$, pg_temp.item(2)),
    'open -> resolved with a note'
);
SELECT lives_ok(
    format(
        $$UPDATE guard.review_items SET status = 'dismissed', note = 'noise', false_positive = TRUE
          WHERE id = %s$$,
        pg_temp.item(3)
    ),
    'open -> dismissed as a false positive'
);
SELECT results_eq(
    format(
        $$SELECT status, claimed_at = now(), closed_at IS NULL FROM guard.review_items
          WHERE id = %s$$,
        pg_temp.item(1)
    ),
    $$VALUES ('claimed', TRUE, TRUE)$$,
    'a claim is stamped with the transaction''s time'
);

-- From claimed.
SELECT throws_ok(
    format($$UPDATE guard.review_items SET status = 'open' WHERE id = %s$$, pg_temp.item(1)),
    '23514', NULL, 'claimed -> open is refused (a claim is not handed back)'
);
SELECT throws_ok(
    format(
        $$UPDATE guard.review_items SET claimed_at = now() - interval '1 day' WHERE id = %s$$,
        pg_temp.item(1)
    ),
    '23514', NULL, 'claimed: its claimed_at is not rewritten'
);
SELECT throws_ok(
    format(
        $$UPDATE guard.review_items SET status = 'dismissed', note = 'x', claimed_by = 'bob'
          WHERE id = %s$$,
        pg_temp.item(1)
    ),
    '23514', NULL, 'claimed -> dismissed that changes the claim is refused'
);
SELECT lives_ok(
    format($$UPDATE guard.review_items SET claimed_by = 'ann (desk 2)' WHERE id = %s$$, pg_temp.item(1)),
    'claimed: its claimed_by label may be corrected'
);
SELECT lives_ok(
    format($$UPDATE guard.review_items SET status = 'resolved', note = 'done' WHERE id = %s$$, pg_temp.item(1)),
    'claimed -> resolved with a note'
);
UPDATE guard.review_items SET status = 'claimed', claimed_by = 'bob'
WHERE id = pg_temp.item(4);
SELECT lives_ok(
    format($$UPDATE guard.review_items SET status = 'dismissed', note = 'dup' WHERE id = %s$$, pg_temp.item(4)),
    'claimed -> dismissed with a note'
);

-- From resolved and dismissed: final.
SELECT throws_ok(
    format($$UPDATE guard.review_items SET status = 'open' WHERE id = %s$$, pg_temp.item(1)),
    '23514', NULL, 'resolved -> open is refused'
);
SELECT throws_ok(
    format($$UPDATE guard.review_items SET status = 'claimed', claimed_by = 'c' WHERE id = %s$$, pg_temp.item(2)),
    '23514', NULL, 'resolved -> claimed is refused'
);
SELECT throws_ok(
    format($$UPDATE guard.review_items SET status = 'resolved' WHERE id = %s$$, pg_temp.item(3)),
    '23514', NULL, 'dismissed -> resolved is refused'
);
SELECT throws_ok(
    format($$UPDATE guard.review_items SET note = 'rewritten' WHERE id = %s$$, pg_temp.item(4)),
    '23514', NULL, 'dismissed: its note is not rewritten'
);
-- the same for a resolved item, by the trail's own rule (not only by the CHECK on closed_at that
-- a reopening also breaks): these were closed in this transaction, so closed_at is now()
SELECT throws_like(
    format($$UPDATE guard.review_items SET status = 'dismissed' WHERE id = %s$$, pg_temp.item(1)),
    '%a closed item is never reopened or rewritten%', 'resolved -> dismissed is refused'
);
SELECT throws_like(
    format($$UPDATE guard.review_items SET note = 'rewritten' WHERE id = %s$$, pg_temp.item(2)),
    '%a closed item is never reopened or rewritten%', 'resolved: its note is not rewritten'
);
SELECT lives_ok(
    format($$UPDATE guard.review_items SET status = status WHERE id IN (%s, %s)$$, pg_temp.item(1), pg_temp.item(3)),
    'a closed item written with its own values again is no change'
);

SELECT * FROM finish();
ROLLBACK;
