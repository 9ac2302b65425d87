-- I1: the direction a call's stored value stands for: trimmed, folded to lower case, inbound
-- when missing or blank. The one definition: the BEFORE ROW normaliser stores it, and
-- guard.reconcile and guard.reconcile_call_batch ask with it which old rows the normaliser would
-- fix. Whether the result is a valid direction is the CHECK's to say.
-- LANGUAGE sql, IMMUTABLE, one expression, no SET clause, not SECURITY DEFINER: the planner
-- inlines it, so a call costs what the expression written in place costs
-- (tests/db/test_repeated_conditions.py proves it with EXPLAIN). A RETURN body is parsed once,
-- when the function is created: what lower and btrim mean cannot depend on a caller's
-- search_path.
CREATE OR REPLACE FUNCTION guard.normalised_direction(direction text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN coalesce(nullif(lower(btrim(direction)), ''), 'inbound');
