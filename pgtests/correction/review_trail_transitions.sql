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
-- UPDATE item n SET assignments: refused by the trail (23514), or let through.
CREATE FUNCTION pg_temp.refused(n integer, assignments text, description text) RETURNS text
LANGUAGE sql AS $$
    SELECT throws_ok(
        format('UPDATE guard.review_items SET %s WHERE id = %s', assignments, pg_temp.item(n)),
        '23514', NULL, description
    )
$$;
CREATE FUNCTION pg_temp.let_through(n integer, assignments text, description text) RETURNS text
LANGUAGE sql AS $$
    SELECT lives_ok(
        format('UPDATE guard.review_items SET %s WHERE id = %s', assignments, pg_temp.item(n)),
        description
    )
$$;

-- From open: what is refused.
SELECT pg_temp.refused(1, $$claimed_by = 'ann'$$, 'open: a claimed_by label without claiming is refused');
SELECT pg_temp.refused(1, $$note = 'n'$$, 'open: a note without closing is refused');
SELECT pg_temp.refused(1, $$claimed_at = now()$$, 'open: a claimed_at without claiming is refused');
SELECT pg_temp.refused(1, $$status = 'claimed'$$, 'open -> claimed without a claimed_by label is refused');
SELECT pg_temp.refused(1, $$status = 'claimed', claimed_by = ' '$$, 'open -> claimed with a blank label is refused');
SELECT pg_temp.refused(1, $$status = 'claimed', claimed_by = 'ann', claimed_at = now() - interval '1 hour'$$, 'open -> claimed with a forged claimed_at is refused');
SELECT pg_temp.refused(1, $$status = 'claimed', claimed_by = 'ann', note = 'x'$$, 'open -> claimed that also writes a note is refused');
SELECT pg_temp.refused(1, $$status = 'resolved'$$, 'open -> resolved without a note is refused');
SELECT pg_temp.refused(1, $$status = 'resolved', note = 'x', false_positive = TRUE$$, 'open -> resolved as a false positive is refused (only dismissed can be)');
SELECT pg_temp.refused(1, $$status = 'resolved', note = 'x', closed_at = now() - interval '1 minute'$$, 'open -> resolved with a forged closed_at is refused');
SELECT pg_temp.refused(1, $$status = 'resolved', note = 'x', claimed_by = 'ann'$$, 'open -> resolved that also claims is refused');
-- From open: what is let through.
SELECT pg_temp.let_through(1, $$details = '{"n": 1, "more": true}'$$, 'open: a column outside the trail may change');
SELECT pg_temp.let_through(1, $$status = 'claimed', claimed_by = 'ann'$$, 'open -> claimed with a label');
SELECT pg_temp.let_through(2, $$status = 'resolved', note = 'fixed'$$, 'open -> resolved with a note');
SELECT pg_temp.let_through(3, $$status = 'dismissed', note = 'noise', false_positive = TRUE$$, 'open -> dismissed as a false positive');
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
SELECT pg_temp.refused(1, $$status = 'open'$$, 'claimed -> open is refused (a claim is not handed back)');
SELECT pg_temp.refused(1, $$claimed_at = now() - interval '1 day'$$, 'claimed: its claimed_at is not rewritten');
SELECT pg_temp.refused(1, $$status = 'dismissed', note = 'x', claimed_by = 'bob'$$, 'claimed -> dismissed that changes the claim is refused');
SELECT pg_temp.let_through(1, $$claimed_by = 'ann (desk 2)'$$, 'claimed: its claimed_by label may be corrected');
SELECT pg_temp.let_through(1, $$status = 'resolved', note = 'done'$$, 'claimed -> resolved with a note');
UPDATE guard.review_items SET status = 'claimed', claimed_by = 'bob'
WHERE id = pg_temp.item(4);
SELECT pg_temp.let_through(4, $$status = 'dismissed', note = 'dup'$$, 'claimed -> dismissed with a note');

-- From resolved and dismissed: final.
SELECT pg_temp.refused(1, $$status = 'open'$$, 'resolved -> open is refused');
SELECT pg_temp.refused(2, $$status = 'claimed', claimed_by = 'c'$$, 'resolved -> claimed is refused');
SELECT pg_temp.refused(3, $$status = 'resolved'$$, 'dismissed -> resolved is refused');
SELECT pg_temp.refused(4, $$note = 'rewritten'$$, 'dismissed: its note is not rewritten');
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
