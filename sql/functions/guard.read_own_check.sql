-- The rows of a DBA's own check view (guard.register_check), read in the sandbox every own check
-- runs in, whoever runs the pass (a superuser, the owner role, pg_cron, the application through
-- check_call): guard.run_checks reads own checks only through here, Booking Guard's own views
-- directly.
--   - The identity: SECURITY DEFINER, owned by the check reader role (guard.check_reader(), given
--     it by guard.apply_grants), which may read what the reporting role may read, of every
--     company, and nothing else: a view that reads more (query_to_xml, table_to_xml,
--     pg_read_file, a catalog, a table reporting may not read) is refused by PostgreSQL itself.
--   - No write and no trace: the view is read in a subtransaction that is always rolled back,
--     read-only, so nothing it does outlives the read: a write (through a function it may call),
--     a large object, a setting changed for the session (statement_timeout, search_path, the
--     company pin), a transaction advisory lock. Only a session advisory lock survives a
--     rollback: each caller notes the locks held before its first own check and releases the
--     others after its last (guard.advisory_locks_held, guard.release_advisory_locks_since),
--     once per pass rather than per read: listing pg_locks was half of a read's cost.
--   - Which rows: those observed in [observed_from, observed_to) (either end NULL: open), of one
--     call, of some entities; every argument NULL: all of them (the sweep). A trial reads none:
--     the view is opened with LIMIT 0, which checks every privilege its query needs (relations,
--     columns, functions) without reading a row (guard.register_check).
-- Executable by the owner role only (guard.apply_grants): detection runs as it.
CREATE OR REPLACE FUNCTION guard.read_own_check(
    check_view text,
    observed_from timestamptz,
    observed_to timestamptz,
    of_call bigint,
    of_entities bigint[],
    trial boolean DEFAULT FALSE
)
RETURNS SETOF guard.finding
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found guard.finding[];
    read_through boolean := FALSE;
    conditions text[] := '{}'::text[];
    query text;
    statement_name text;
BEGIN
    -- owned by the check reader, or it does not run (guard.apply_grants hands it over)
    -- (guard.check_reader()'s rule read directly: a third of a read's cost as a call)
    IF NOT EXISTS (
        SELECT FROM guard.role_names AS r
        WHERE r.kind = 'reporting' AND left(r.role_name, 56) || '_checks' = current_user
    ) THEN
        RAISE EXCEPTION 'own checks run as the check reader role %, not as %', guard.check_reader(), current_user
            USING
                ERRCODE = 'insufficient_privilege',
                HINT = 'guard db apply gives guard.read_own_check to that role; guard db verify says what is wrong';
    END IF;
    IF read_own_check.check_view IS NULL OR read_own_check.check_view !~ '^check_[a-z0-9_]{1,57}$'
        OR to_regclass('guard.' || read_own_check.check_view) IS NULL THEN
        RAISE EXCEPTION 'relation guard.% does not exist', coalesce(left(read_own_check.check_view, 80), 'NULL')
            USING ERRCODE = 'undefined_table';
    END IF;
    IF observed_from IS NOT NULL THEN
        conditions := conditions || 'v.observed_at >= $1'::text;
    END IF;
    IF observed_to IS NOT NULL THEN
        conditions := conditions || 'v.observed_at < $2'::text;
    END IF;
    IF of_call IS NOT NULL THEN
        conditions := conditions || 'v.call_id = $3'::text;
    END IF;
    IF of_entities IS NOT NULL THEN
        conditions := conditions || 'v.entity_id = ANY($4)'::text;
    END IF;
    query := format(
        'SELECT coalesce(array_agg(ROW(v.check_id, v.company_id, v.entity_type, v.entity_id,'
        ' v.call_id, v.severity, v.observed_at, v.detail)::guard.finding), ''{}'')'
        ' FROM (SELECT * FROM guard.%I %s) AS v %s',
        read_own_check.check_view,
        CASE WHEN trial THEN 'LIMIT 0' ELSE '' END,
        CASE WHEN cardinality(conditions) > 0 THEN 'WHERE ' || array_to_string(conditions, ' AND ') ELSE '' END
    );
    statement_name := 'guard_own_check_' || md5(query);
    BEGIN
        PERFORM set_config('transaction_read_only', 'on', TRUE);
        -- Prepared once per session and shape (named by its text, as guard.run_checks does with
        -- its own queries): planned at every read, the view's query cost more than the rest of
        -- the read. A statement outlives the rollback below; it is checked for, never relied on.
        IF NOT EXISTS (SELECT FROM pg_prepared_statements AS p WHERE p.name = statement_name) THEN
            EXECUTE format(
                'PREPARE %I (timestamptz, timestamptz, bigint, bigint[]) AS %s', statement_name, query
            );
        END IF;
        EXECUTE format(
            'EXECUTE %I(%L, %L, %L, %L)', statement_name, observed_from, observed_to, of_call, of_entities
        )
        INTO found;
        read_through := TRUE;
        -- Roll back everything the read did; the rows are kept in a variable.
        RAISE EXCEPTION USING ERRCODE = 'triggered_action_exception';
    EXCEPTION WHEN triggered_action_exception THEN
        IF NOT read_through THEN
            RAISE;
        END IF;
    END;
    RETURN QUERY SELECT f.* FROM unnest(found) AS f;
END;
$$;
