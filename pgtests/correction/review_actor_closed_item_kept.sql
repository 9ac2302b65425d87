-- guard.stamp_review_actor on a closed item: an update of a column the review trail leaves open
-- (its details, by a maintenance job or an owner) keeps the logins behind the claim and the
-- close, whoever runs it. Both were written by earlier logins (the triggers off, as by other
-- sessions).
BEGIN;
SELECT plan(3);

INSERT INTO companies (id, name) VALUES (1241, 'trail');
INSERT INTO guard.review_items (company_id, call_id, reason) VALUES (1241, 12401, 'other');
SET LOCAL session_replication_role = replica;
UPDATE guard.review_items
SET
    status = 'resolved',
    claimed_by = 'ann',
    claimed_at = now() - interval '1 hour',
    claimed_by_role = 'claiming_login',
    closed_by = 'ann',
    closed_at = now() - interval '10 min',
    closed_by_role = 'closing_login',
    note = 'done'
WHERE company_id = 1241;
SET LOCAL session_replication_role = origin;

UPDATE guard.review_items SET details = '{"masked": true}'
WHERE company_id = 1241;

SELECT is(
    (
        SELECT details FROM guard.review_items
        WHERE company_id = 1241
    ),
    '{"masked": true}'::jsonb,
    'the closed item''s details were updated'
);
SELECT is(
    (
        SELECT claimed_by_role FROM guard.review_items
        WHERE company_id = 1241
    ),
    'claiming_login',
    'the login behind the claim is kept'
);
SELECT is(
    (
        SELECT closed_by_role FROM guard.review_items
        WHERE company_id = 1241
    ),
    'closing_login',
    'the login behind the close is kept'
);

SELECT * FROM finish();
ROLLBACK;
