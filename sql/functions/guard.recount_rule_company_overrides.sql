-- Keep guard.rules.company_overrides equal to the number of the rule's rows in
-- guard.rule_company_stages, once per statement that inserts or deletes some (changed: the
-- statement's transition table). Counted again rather than added to: a count can never drift
-- from the rows. A TRUNCATE is guard.clear_rule_company_overrides'.
-- Two transactions that write overrides of one rule at once (hand-written rows, not `guard rules`,
-- which locks the table) each counted in their own snapshot, without the other's row: the later
-- commit's count won, one row short (a counter left at 0 with an override in the table,
-- which the commit-time check then ignored). So the rule's row is locked first, and counted in the
-- next statement: under READ COMMITTED that statement's snapshot holds what a writer that held
-- the lock committed; under REPEATABLE READ or SERIALIZABLE the lock of a row such a writer
-- updated fails with a serialization error, for the caller to retry.
CREATE OR REPLACE FUNCTION guard.recount_rule_company_overrides()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM
    FROM guard.rules AS r
    WHERE r.id IN (SELECT c.rule_id FROM changed AS c)
    ORDER BY r.id
    FOR NO KEY UPDATE;
    UPDATE guard.rules AS r
    SET company_overrides = (
        SELECT count(*)::integer FROM guard.rule_company_stages AS o
        WHERE o.rule_id = r.id
    )
    WHERE r.id IN (SELECT c.rule_id FROM changed AS c);
    RETURN NULL;
END;
$$;
