-- Close a review item: resolved (the problem was dealt with) or dismissed (nothing to do;
-- false_positive says detection was wrong, which feeds the false-positive KPI). Who, when and a
-- note are recorded. Closing an item twice, or one that does not exist, is an error.
CREATE OR REPLACE FUNCTION guard.review_close(
    item_id bigint,
    actor text,
    outcome text,
    note text,
    false_positive boolean DEFAULT FALSE
)
RETURNS guard.review_items
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    closed guard.review_items;
BEGIN
    IF outcome NOT IN ('resolved', 'dismissed') THEN
        RAISE EXCEPTION 'a review item is closed as resolved or dismissed, not %', outcome
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF false_positive AND outcome <> 'dismissed' THEN
        RAISE EXCEPTION 'only a dismissed item can be a false positive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE guard.review_items AS r
    SET
        status = outcome,
        closed_by = actor,
        closed_at = now(),
        note = review_close.note,
        false_positive = review_close.false_positive
    WHERE r.id = item_id AND r.status IN ('open', 'claimed')
    RETURNING r.* INTO closed;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'review item % is not open (unknown or already closed)', item_id
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN closed;
END;
$$;
