-- I3, I4, I6: an appointment is active unless it is cancelled or soft-deleted. The one definition
-- of "active": every statement that asks calls it.
-- LANGUAGE sql, IMMUTABLE, one expression, no SET clause, not SECURITY DEFINER: the planner
-- inlines it, so a call costs what the expression written in place costs
-- (tests/db/test_repeated_conditions.py proves it with EXPLAIN). deleted_at is of any type: an
-- adopted table keeps `timestamp without time zone`, and a cast to timestamptz depends on the
-- session's TimeZone, which would keep the planner from inlining an IMMUTABLE function.
CREATE OR REPLACE FUNCTION guard.is_active_appointment(status text, deleted_at anyelement)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
-- A quoted body: PostgreSQL 15 refuses polymorphic arguments with a RETURN body.
AS $$
    SELECT deleted_at IS NULL AND status IS DISTINCT FROM 'cancelled'
$$;
