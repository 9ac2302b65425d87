-- Hand the most urgent open items to one reviewer. SKIP LOCKED: two reviewers claiming at the
-- same moment never get the same item and never wait for each other. `= ANY (ARRAY(...))`, not
-- `IN (...)`: the locking subquery runs once, as an InitPlan; rescanned on the inner side of a
-- join it skips the rows this very UPDATE already changed and hands out more than max_items.
CREATE OR REPLACE FUNCTION guard.review_claim(actor text, max_items integer DEFAULT 1)
RETURNS SETOF guard.review_items
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    UPDATE guard.review_items AS r
    SET status = 'claimed', claimed_by = review_claim.actor, claimed_at = now()
    WHERE r.id = ANY (ARRAY(
        SELECT q.id
        FROM guard.review_items AS q
        WHERE q.status = 'open'
        ORDER BY q.priority, q.created_at, q.id
        LIMIT review_claim.max_items
        FOR UPDATE SKIP LOCKED
    ))
    RETURNING r.*;
$$;
