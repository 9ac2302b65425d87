-- I3, I4: whether a call has an active appointment that counts for it (has_active), the one
-- definition the derivation of the booking flags (guard.call_flags_to_correct) and the
-- commit-time check (guard.check_flags_at_commit) read. An appointment counts only for a call of
-- its own company: a cross-tenant link on an adopted database books nothing.
-- Set-returning (one row), read in FROM as `CROSS JOIN LATERAL
-- guard.active_appointment_for_call(c.id, c.company_id) AS h`: a scalar function holding the
-- EXISTS would not be inlined (PostgreSQL inlines no scalar function with a sub-select) and would
-- run as a query of its own per call. This one is: LANGUAGE sql, STABLE, one SELECT, not STRICT,
-- no SET clause, not SECURITY DEFINER; the planner then pulls the FROM-less subquery up, so
-- h.has_active is the EXISTS written in place (tests/db/test_repeated_conditions.py proves it
-- with EXPLAIN).
CREATE OR REPLACE FUNCTION guard.active_appointment_for_call(for_call_id bigint, for_company_id bigint)
RETURNS TABLE (has_active boolean)
LANGUAGE sql
STABLE
AS $$
    SELECT EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE
            a.call_id = for_call_id
            AND a.company_id = for_company_id
            AND guard.is_active_appointment(a.status, a.deleted_at)
    )
$$;
