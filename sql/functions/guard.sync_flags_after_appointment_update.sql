-- I3, AFTER UPDATE ... FOR EACH STATEMENT on appointments: the calls on both sides of every
-- appointment whose call, company or activeness (status, soft delete) changed get their flags
-- derived again, those that lost an active appointment first.
-- Which calls: the row trigger guard.note_appointment_change noted them (it fires only for an
-- UPDATE of call_id, company_id, status or deleted_at, and notes only a change that matters), so
-- a move or any other UPDATE finds nothing noted and returns at once, and a one-row cancel reads
-- no transition table: one call (L<id> lost, T<id> derived) goes to guard.sync_one_call_flags;
-- several go to guard.sync_call_flags. A statement that changed more than the notes hold
-- ('many') is derived from its transition tables: both grouped together on what matters (the old version counts -1,
-- the new one +1), so an unchanged row's two versions cancel out and a changed row leaves its old
-- side (-1) and its new side (+1); one scan of each table and one aggregate, never a join of the
-- transition tables, whose plan, cached from a one-row firing, made a big statement quadratic.
-- Lock first, in id order, and read the appointments in the next statement (see
-- guard.sync_flags_after_appointment_delete).
-- No SET clause (a move pays for every one), every function name qualified: see "Trigger
-- functions without SET clauses" in docs/security.md. Few PL/pgSQL expressions: each is compiled
-- again in every transaction.
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_update()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    noted text := pg_catalog.current_setting('booking_guard.appointment_changes', TRUE);
    touched bigint[];
    lost bigint[];
BEGIN
    IF noted IS NULL OR noted = '' THEN
        RETURN NULL;
    END IF;
    -- Clear the notes for the next statement. Called in expressions, here and below, not by
    -- PERFORM: a PERFORM is a query, with an executor to start. set_config returns the new value,
    -- '', so noted stays as it was.
    noted := noted || pg_catalog.set_config('booking_guard.appointment_changes', '', TRUE);
    IF pg_catalog.strpos(noted, ',') = 0 AND noted <> 'many' THEN
        IF guard.sync_one_call_flags(
            pg_catalog.substr(noted, 2)::bigint, pg_catalog.left(noted, 1) = 'L'
        ) THEN
            -- derived; there is nothing more to do either way
        END IF;
        RETURN NULL;
    END IF;
    IF noted = 'many' THEN
        SELECT
            coalesce(pg_catalog.array_agg(DISTINCT v.call_id), '{}'),
            coalesce(
                pg_catalog.array_agg(DISTINCT v.call_id) FILTER (WHERE v.side < 0 AND v.active), '{}'
            )
        INTO touched, lost
        FROM (
            SELECT u.call_id, u.active, pg_catalog.sum(u.side) AS side
            FROM (
                SELECT
                    o.id,
                    o.call_id,
                    o.company_id,
                    guard.is_active_appointment(o.status, o.deleted_at) AS active,
                    -1 AS side
                FROM old_rows AS o
                UNION ALL
                SELECT
                    n.id,
                    n.call_id,
                    n.company_id,
                    guard.is_active_appointment(n.status, n.deleted_at) AS active,
                    1 AS side
                FROM new_rows AS n
            ) AS u
            GROUP BY u.id, u.call_id, u.company_id, u.active
            HAVING pg_catalog.sum(u.side) <> 0
        ) AS v
        WHERE v.call_id IS NOT NULL;
    ELSE
        SELECT
            coalesce(pg_catalog.array_agg(DISTINCT e.call_id), '{}'),
            coalesce(pg_catalog.array_agg(DISTINCT e.call_id) FILTER (WHERE e.lost), '{}')
        INTO touched, lost
        FROM (
            SELECT pg_catalog.substr(t.entry, 2)::bigint AS call_id, pg_catalog.left(t.entry, 1) = 'L' AS lost
            FROM pg_catalog.unnest(pg_catalog.string_to_array(noted, ',')) AS t (entry)
        ) AS e;
    END IF;
    -- lost is a subset of touched: a call in both is derived once, as lost
    PERFORM guard.sync_call_flags(
        lost, ARRAY(SELECT t.id FROM pg_catalog.unnest(touched) AS t (id) WHERE t.id <> ALL (lost))
    );
    RETURN NULL;
END;
$$;
