-- Tenants bound to roles, not to a setting. Until now row-level security compared company_id
-- with booking_guard.company_id, a setting every session may change for itself (SET, set_config,
-- ALTER ROLE ... SET, PGOPTIONS): it selected a tenant, it did not authorise one. Now:
-- - guard.tenant_bindings maps roles to companies; only the owner role writes it
--   (guard.tenant_grant, guard.tenant_revoke, guard.tenant_list; `guard tenant grant|revoke|list`);
-- - every tenant policy, and guard.calls_report, reads guard.visible_companies(): the companies
--   bound to the current role and the roles it inherits from, narrowed (never widened) by the
--   setting; an unbound role sees nothing. public.companies gets the same policy for reporting
--   and reviewer;
-- - the failure-rate anomaly and recent-failure views keep their index paths under those policies;
-- - guard.assert_tenant also keeps a bound login within its companies in SECURITY DEFINER
--   functions;
-- - review items record the login that claimed and closed them (claimed_by_role,
--   closed_by_role, set by a trigger); claimed_by and closed_by stay the reviewer's labels.
-- Upgrade: reporting and reviewer logins see nothing until they (or a group role they inherit
-- from) are bound: `guard tenant grant LOGIN COMPANY_ID`. `guard db verify` lists unbound ones.

-- Which companies a database role may see. Row-level security on every guard table, and on calls
-- and appointments for reporting and reviewer, reads this table (guard.visible_companies): a
-- role sees the companies bound to it and to every role whose privileges it inherits, so binding
-- a group role covers its members. Only the owner role writes it (guard.tenant_grant,
-- guard.tenant_revoke); a setting a session can change never adds a company.
-- role_id is the role's oid (regrole): renaming a role keeps its binding, and a dropped role's
-- binding can no longer match anybody.
CREATE TABLE guard.tenant_bindings (
    role_id regrole NOT NULL,
    company_id bigint NOT NULL,
    granted_by text NOT NULL DEFAULT session_user,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role_id, company_id)
);

COMMENT ON TABLE guard.tenant_bindings IS
'Companies each database role may see (guard tenant grant|revoke|list; see docs/security.md).';

-- A role reads only the bindings that apply to it (its own and those of roles whose privileges it
-- inherits): guard.visible_companies runs with the reader's rights, and who else may see which
-- company is none of its business. Not forced: the owner role owns the table and maintains it.
-- No policy for writes: only the owner role, which bypasses these policies, writes bindings.
ALTER TABLE guard.tenant_bindings ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_bindings ON guard.tenant_bindings
FOR SELECT
TO public
USING (pg_catalog.pg_has_role(current_user, role_id, 'USAGE'));

-- The companies whose rows this session may see: those bound (guard.tenant_bindings) to the
-- current role or to any role whose privileges it inherits, narrowed to the one company the
-- session selected with booking_guard.company_id (guard.current_company) when it selected one.
-- The setting can only narrow: a company not bound to the role is never in the result, and an
-- unbound role gets an empty array, so it sees nothing.
-- current_user, not session_user: SET ROLE to a role the login is a member of is PostgreSQL's own
-- authorisation, and such a role inherits no more than the login does, so it can only narrow.
-- Policies call it as (SELECT guard.visible_companies()), an InitPlan evaluated once per
-- statement: `company_id = ANY ($1)` stays an index condition instead of a per-row subquery.
-- SECURITY INVOKER (current_user must be the reader) with a fixed search_path: the reader
-- cannot swap an operator or function used here for one of its own. PL/pgSQL, not SQL: it keeps
-- its plan for the session, where a SQL function called once per statement is planned on every
-- call (bench/tenant_rls.py prints the cost of this lookup per statement).
CREATE FUNCTION guard.visible_companies()
RETURNS bigint[]
LANGUAGE plpgsql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (
        SELECT coalesce(array_agg(DISTINCT b.company_id ORDER BY b.company_id), '{}')
        FROM guard.tenant_bindings AS b
        WHERE
            pg_has_role(current_user, b.role_id, 'USAGE')
            AND b.company_id = coalesce(guard.current_company(), b.company_id)
    );
END;
$$;

-- Bind a role to a company: the role, and every role that inherits its privileges (its members),
-- may then see that company's rows. Returns FALSE when the binding existed already.
-- Executable by the owner role only, and SECURITY INVOKER: it writes guard.tenant_bindings with
-- the caller's rights, so no other role could bind itself through it even if it were granted.
CREATE FUNCTION guard.tenant_grant(role_name text, company_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grantee oid;
BEGIN
    SELECT r.oid INTO grantee FROM pg_roles AS r WHERE r.rolname = tenant_grant.role_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role "%" does not exist', tenant_grant.role_name
            USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT EXISTS (SELECT FROM public.companies AS c WHERE c.id = tenant_grant.company_id) THEN
        RAISE EXCEPTION 'company % does not exist', tenant_grant.company_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    INSERT INTO guard.tenant_bindings (role_id, company_id)
    VALUES (grantee, tenant_grant.company_id)
    ON CONFLICT DO NOTHING;
    RETURN FOUND;
END;
$$;

-- Unbind a role from a company: it (and its members, unless bound otherwise) no longer sees that
-- company's rows from their next statement on. Returns FALSE when there was no such binding.
-- Executable by the owner role only; SECURITY INVOKER, like guard.tenant_grant.
CREATE FUNCTION guard.tenant_revoke(role_name text, company_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grantee oid;
BEGIN
    SELECT r.oid INTO grantee FROM pg_roles AS r WHERE r.rolname = tenant_revoke.role_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role "%" does not exist', tenant_revoke.role_name
            USING ERRCODE = 'undefined_object';
    END IF;
    DELETE FROM guard.tenant_bindings AS b
    WHERE b.role_id = grantee AND b.company_id = tenant_revoke.company_id;
    RETURN FOUND;
END;
$$;

-- Every binding, with the company's name and the logins it reaches (the role itself when it can
-- log in, and every login that inherits its privileges); role_name is the role's name as it is,
-- unquoted. A binding of a dropped role shows its oid as role_name and reaches nobody. Executable by the owner role only.
CREATE FUNCTION guard.tenant_list()
RETURNS TABLE (
    role_name text,
    company_id bigint,
    company_name text,
    logins text[],
    granted_by text,
    granted_at timestamptz
)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT
        coalesce(r.rolname::text, b.role_id::oid::text),
        b.company_id,
        c.name::text,
        ARRAY(
            SELECT l.rolname::text
            FROM pg_roles AS l
            WHERE l.rolcanlogin AND pg_has_role(l.oid, b.role_id, 'USAGE') AND NOT l.rolsuper
            ORDER BY 1
        ),
        b.granted_by,
        b.granted_at
    FROM guard.tenant_bindings AS b
    LEFT JOIN pg_roles AS r ON b.role_id = r.oid
    LEFT JOIN public.companies AS c ON b.company_id = c.id
    ORDER BY 1, 2;
$$;

-- The companies bound to the session's login (guard.tenant_bindings, inherited through role
-- membership), or NULL when the login is bound to none: the multi-tenant application, a job.
-- session_user, not current_user: the SECURITY DEFINER functions that ask run as the owner.
-- Superusers see every binding through pg_has_role, so they are left out: nothing confines them
-- anyway. Used by guard.assert_tenant (refuse a row) and by the functions that list rows for
-- the application (filter them), so that both agree.
CREATE FUNCTION guard.login_companies()
RETURNS bigint[]
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_agg(b.company_id ORDER BY b.company_id)
    FROM guard.tenant_bindings AS b
    WHERE
        pg_has_role(session_user, b.role_id, 'USAGE')
        AND NOT (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = session_user);
$$;

-- Refuse to act on another tenant's row: SECURITY DEFINER functions the application calls with a
-- call id run as the owner, which row-level security does not restrict, so they check the row's
-- company themselves, against two things:
-- - the company the session selected (booking_guard.company_id, guard.current_company): an
--   application connection that serves one company may pin itself; a selection only narrows;
-- - the companies bound to the login (guard.login_companies): a login bound to companies stays
--   within them even here. Inside a SECURITY DEFINER function current_user is the owner, so the
--   login is identified by session_user, which only a superuser can change.
-- Neither (a job, the multi-tenant application, which is the trusted writer): nothing to check.
CREATE OR REPLACE FUNCTION guard.assert_tenant(row_company_id bigint)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog
AS $$
DECLARE
    tenant bigint := guard.current_company();
    login_companies bigint[];
BEGIN
    IF tenant IS NOT NULL AND row_company_id IS DISTINCT FROM tenant THEN
        RAISE EXCEPTION 'permission denied: the row belongs to another company than the session''s tenant (%)',
            tenant
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    login_companies := guard.login_companies();
    IF login_companies IS NOT NULL AND NOT coalesce(row_company_id = ANY (login_companies), FALSE) THEN
        RAISE EXCEPTION 'permission denied: the row belongs to a company the login % is not bound to',
            session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END;
$$;

-- The calls as reporting sees them: every reporting column, and the phone numbers masked
-- (guard.mask_phone). The reporting role may read this view but not the raw from_number and
-- to_number of public.calls, so this is the one view in schema guard that is NOT
-- security_invoker: a view running with the reader's rights could not read the raw numbers to
-- mask them. It runs with its owner's rights instead, and therefore filters by the reader's
-- companies itself (guard.visible_companies(): the companies bound to the reader's role, since
-- current_user in a view is still the reader; unbound: no rows); security_barrier keeps a
-- reader's own conditions from being evaluated before that filter.
CREATE OR REPLACE VIEW guard.calls_report WITH (security_barrier = TRUE) AS
SELECT
    c.id,
    c.company_id,
    c.retell_call_id,
    guard.mask_phone(c.from_number) AS from_number_masked,
    guard.mask_phone(c.to_number) AS to_number_masked,
    c.status,
    c.direction,
    c.customer_id,
    c.customer_link_status,
    c.customer_link_method,
    c.customer_link_confidence,
    c.customer_linked_at,
    c.session_outcome,
    c.appointment_made,
    c.appointment_link_status,
    c.appointment_linked_at,
    c.booking_id,
    c.booking_confirmed,
    c.booking_failed,
    c.booking_failure_reason,
    c.requires_manual_processing,
    c.created_at,
    c.updated_at
FROM public.calls AS c
WHERE c.company_id = ANY((SELECT guard.visible_companies())::bigint[]);  -- noqa: CP03

-- Row-level security by company on guard.alerts: the companies bound to the role
-- (guard.visible_companies), evaluated once per statement.
ALTER POLICY tenant_isolation ON guard.alerts
USING (company_id = ANY((SELECT guard.visible_companies())::bigint[]))  -- noqa: CP03
WITH CHECK (company_id = ANY((SELECT guard.visible_companies())::bigint[]));  -- noqa: CP03

-- Row-level security by company on guard.review_items: the companies bound to the role
-- (guard.visible_companies), evaluated once per statement.
ALTER POLICY tenant_isolation ON guard.review_items
USING (company_id = ANY((SELECT guard.visible_companies())::bigint[]))  -- noqa: CP03
WITH CHECK (company_id = ANY((SELECT guard.visible_companies())::bigint[]));  -- noqa: CP03

-- Row-level security by company on guard.daily_reports: the companies bound to the role
-- (guard.visible_companies), evaluated once per statement.
ALTER POLICY tenant_isolation ON guard.daily_reports
USING (company_id = ANY((SELECT guard.visible_companies())::bigint[]))  -- noqa: CP03
WITH CHECK (company_id = ANY((SELECT guard.visible_companies())::bigint[]));  -- noqa: CP03

-- Row-level security by company on guard.correction_audit: the companies bound to the role
-- (guard.visible_companies), evaluated once per statement.
ALTER POLICY tenant_isolation ON guard.correction_audit
USING (company_id = ANY((SELECT guard.visible_companies())::bigint[]))  -- noqa: CP03
WITH CHECK (company_id = ANY((SELECT guard.visible_companies())::bigint[]));  -- noqa: CP03

-- Row-level security by company on guard.validation_metrics: the companies bound to the role
-- (guard.visible_companies), evaluated once per statement.
ALTER POLICY tenant_isolation ON guard.validation_metrics
USING (company_id = ANY((SELECT guard.visible_companies())::bigint[]))  -- noqa: CP03
WITH CHECK (company_id = ANY((SELECT guard.visible_companies())::bigint[]));  -- noqa: CP03

-- Reporting and reviewer read only the rows of public.calls of the companies bound to their role.
ALTER POLICY guard_tenant_only ON public.calls
USING (company_id = ANY((SELECT guard.visible_companies())::bigint[]));  -- noqa: CP03

-- Reporting and reviewer read only the rows of public.appointments of the companies bound to their role.
ALTER POLICY guard_tenant_only ON public.appointments
USING (company_id = ANY((SELECT guard.visible_companies())::bigint[]));  -- noqa: CP03

-- Row-level security on the application's table public.companies, enabled (not forced: its owner
-- is not affected) so that reporting and reviewer reads can be limited to their companies
-- (guard_tenant_only). This permissive policy keeps every other role, the application included,
-- exactly as before.
ALTER TABLE public.companies ENABLE ROW LEVEL SECURITY;

CREATE POLICY guard_all_rows ON public.companies
FOR ALL
TO public
USING (TRUE)
WITH CHECK (TRUE);

-- Reporting and reviewer connections read only the companies bound to their role
-- (guard.visible_companies; unbound: none): another tenant's name is another tenant's row.
-- Restrictive: it narrows guard_all_rows for these two roles only. Role names from
-- guard.role_names.
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY guard_tenant_only ON public.companies AS RESTRICTIVE FOR SELECT TO %I, %I'
        ' USING (id = ANY ((SELECT guard.visible_companies())::bigint[]))',
        guard.role('reporting'),
        guard.role('reviewer')
    );
END;
$$;

-- Rule booking_failure_anomaly (I7): a company whose booking-failure rate in the recent window
-- (failure_window_minutes) is anomaly_factor times its usual rate for that hour of the week,
-- the usual rate being the same window 1 to 4 weeks earlier. Fewer than anomaly_min_failures
-- failures never count. Five index range scans on calls.created_at, whatever the table size.
-- windows is MATERIALIZED so that the join with calls compares two plain columns: under the
-- row-level security of a reporting login, a join condition that computes with the window's
-- columns (timestamp arithmetic is not leakproof) may not be pushed below the tenant policy into
-- the index scan, and calls was read whole (bench/tenant_rls.py).
CREATE OR REPLACE VIEW guard.check_booking_failure_anomaly WITH (security_invoker = TRUE) AS
WITH params AS (
    SELECT
        max((s.value #>> '{}')::integer) FILTER (WHERE s.key = 'failure_window_minutes') AS window_minutes,
        max((s.value #>> '{}')::numeric) FILTER (WHERE s.key = 'anomaly_factor') AS factor,
        max((s.value #>> '{}')::integer) FILTER (WHERE s.key = 'anomaly_min_failures') AS min_failures
    FROM guard.settings AS s
    WHERE s.key IN ('failure_window_minutes', 'anomaly_factor', 'anomaly_min_failures')
),

windows AS MATERIALIZED (
    SELECT
        w.weeks_ago,
        now() - make_interval(days => 7 * w.weeks_ago) - make_interval(mins => p.window_minutes) AS starts,
        now() - make_interval(days => 7 * w.weeks_ago) AS ends
    FROM params AS p
    CROSS JOIN generate_series(0, 4) AS w (weeks_ago)
),

counted AS (
    SELECT
        c.company_id,
        w.weeks_ago,
        count(*) AS calls,
        count(*) FILTER (WHERE c.session_outcome = 'creation_failed' OR c.booking_failed) AS failures
    FROM windows AS w
    INNER JOIN public.calls AS c ON w.starts <= c.created_at AND w.ends > c.created_at
    GROUP BY c.company_id, w.weeks_ago
),

compared AS (
    SELECT
        r.company_id,
        r.calls AS recent_calls,
        r.failures AS recent_failures,
        r.failures::numeric / r.calls AS recent_rate,
        coalesce(sum(h.failures)::numeric / nullif(sum(h.calls), 0), 0) AS usual_rate
    FROM counted AS r
    LEFT JOIN counted AS h ON r.company_id = h.company_id AND h.weeks_ago > 0
    WHERE r.weeks_ago = 0
    GROUP BY r.company_id, r.calls, r.failures
)

SELECT
    'booking_failure_anomaly'::text AS rule_id,
    cmp.company_id,
    'company'::text AS entity_type,
    cmp.company_id AS entity_id,
    NULL::bigint AS call_id,
    'critical'::text AS severity,
    now() AS observed_at,
    jsonb_build_object(
        'recent_calls', cmp.recent_calls,
        'recent_failures', cmp.recent_failures,
        'recent_rate', round(cmp.recent_rate, 4),
        'usual_rate', round(cmp.usual_rate, 4),
        'factor', p.factor
    ) AS detail
FROM compared AS cmp
CROSS JOIN params AS p
WHERE
    cmp.recent_failures >= p.min_failures
    AND cmp.recent_rate > p.factor * cmp.usual_rate;

-- Rule recent_booking_failure (I7): a booking that failed within the failure window
-- (failure_window_minutes). Failures are not wrong data; they must not go unnoticed.
-- The window's start is a MATERIALIZED CTE so that calls is joined on a plain column: under the
-- row-level security of a reporting login, a condition that holds a sub-select (or computes
-- with another table's columns) is not leakproof, may not be pushed below the tenant policy into
-- the index scan on created_at, and calls was read whole (bench/tenant_rls.py).
CREATE OR REPLACE VIEW guard.check_recent_booking_failure WITH (security_invoker = TRUE) AS
WITH failure_window AS MATERIALIZED (
    SELECT now() - make_interval(mins => (s.value #>> '{}')::integer) AS since
    FROM guard.settings AS s
    WHERE s.key = 'failure_window_minutes'
)

SELECT
    'recent_booking_failure'::text AS rule_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'high'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object(
        'session_outcome', c.session_outcome,
        'booking_failure_reason', c.booking_failure_reason,
        'requires_manual_processing', c.requires_manual_processing
    ) AS detail
FROM failure_window AS w
INNER JOIN public.calls AS c ON w.since <= c.created_at
WHERE c.session_outcome = 'creation_failed' OR c.booking_failed;

-- The logins behind a review item's claim and close (see guard.stamp_review_actor). Items claimed
-- or closed before this migration have none: their labels are all that was recorded.
ALTER TABLE guard.review_items ADD COLUMN claimed_by_role text, ADD COLUMN closed_by_role text;

-- Who claimed and who closed a review item is the login that did it, whatever the statement
-- wrote: claimed_by_role is set when an item becomes claimed (or its claim changes hands), cleared
-- when the claim is, and otherwise kept; closed_by_role likewise for closing. The labels
-- claimed_by and closed_by stay as the reviewer gave them.
-- session_user, the login that authenticated: SET ROLE (to the reviewer group, say) would make
-- current_user name a group instead of the person, and inside a SECURITY DEFINER caller
-- current_user is the owner; only a superuser can change session_user.
CREATE FUNCTION guard.stamp_review_actor()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.claimed_by_role := CASE WHEN NEW.claimed_at IS NOT NULL THEN session_user END;
        NEW.closed_by_role := CASE WHEN NEW.closed_at IS NOT NULL THEN session_user END;
        RETURN NEW;
    END IF;
    IF NEW.claimed_at IS NULL THEN
        NEW.claimed_by_role := NULL;
    ELSIF (NEW.status = 'claimed' AND OLD.status IS DISTINCT FROM 'claimed')
        OR (NEW.claimed_by, NEW.claimed_at) IS DISTINCT FROM (OLD.claimed_by, OLD.claimed_at) THEN
        NEW.claimed_by_role := session_user;
    ELSE
        NEW.claimed_by_role := OLD.claimed_by_role;
    END IF;
    IF NEW.closed_at IS NULL THEN
        NEW.closed_by_role := NULL;
    ELSIF OLD.status IS DISTINCT FROM NEW.status
        OR (NEW.closed_by, NEW.closed_at) IS DISTINCT FROM (OLD.closed_by, OLD.closed_at) THEN
        NEW.closed_by_role := session_user;
    ELSE
        NEW.closed_by_role := OLD.closed_by_role;
    END IF;
    RETURN NEW;
END;
$$;

-- Every write of a review item records the login behind a claim or a close (see
-- guard.stamp_review_actor); a row trigger, as the queue is written a few rows at a time.
CREATE TRIGGER review_items_stamp_actor
BEFORE INSERT OR UPDATE ON guard.review_items
FOR EACH ROW EXECUTE FUNCTION guard.stamp_review_actor();

-- (Re)apply Booking Guard's ownership and privileges from guard.role_names: every object in
-- schema guard is handed to the owner role, PUBLIC loses EXECUTE on the guard functions, and the
-- application, reporting and reviewer roles get exactly what docs/security.md lists. Every
-- migration that creates or re-creates an object in schema guard ends with a DO block that
-- runs PERFORM guard.apply_grants(), so ownership and grants survive DROP and CREATE (CREATE OR
-- REPLACE keeps them anyway). Idempotent; it adds, it never takes a DBA's own grants away
-- (guard db verify reports those). Run by the migrating user, a member of the owner role.
CREATE OR REPLACE FUNCTION guard.apply_grants()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    owner_role text := guard.role('owner');
    app_role text := guard.role('application');
    reader text;
    obj record;
    -- public.calls as reporting may read it: every column Booking Guard knows but the phone numbers
    calls_columns text;
    appointments_columns text;
BEGIN
    -- Ownership: the schema and everything in it. Sequences of identity columns and row types of
    -- tables follow their table.
    IF (SELECT n.nspowner::regrole::text FROM pg_namespace AS n WHERE n.nspname = 'guard')
        IS DISTINCT FROM quote_ident(owner_role) THEN
        EXECUTE format('ALTER SCHEMA guard OWNER TO %I', owner_role);
    END IF;
    FOR obj IN
        SELECT
            CASE c.relkind
                WHEN 'v' THEN 'VIEW'
                WHEN 'm' THEN 'MATERIALIZED VIEW'
                WHEN 'S' THEN 'SEQUENCE'
                WHEN 'f' THEN 'FOREIGN TABLE'
                ELSE 'TABLE'
            END AS object_type,
            c.oid::regclass::text AS object_name
        FROM pg_class AS c
        WHERE
            c.relnamespace = 'guard'::regnamespace
            AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
            AND c.relowner <> to_regrole(quote_ident(owner_role))
            AND NOT EXISTS (
                SELECT FROM pg_depend AS d
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
            )
        UNION ALL
        SELECT 'ROUTINE', p.oid::regprocedure::text
        FROM pg_proc AS p
        WHERE p.pronamespace = 'guard'::regnamespace AND p.proowner <> to_regrole(quote_ident(owner_role))
        UNION ALL
        SELECT 'TYPE', t.oid::regtype::text
        FROM pg_type AS t
        LEFT JOIN pg_class AS r ON t.typrelid = r.oid
        WHERE
            t.typnamespace = 'guard'::regnamespace
            AND t.typowner <> to_regrole(quote_ident(owner_role))
            AND t.typelem = 0
            AND (t.typrelid = 0 OR r.relkind = 'c')
        ORDER BY 1, 2
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', obj.object_type, obj.object_name, owner_role);
    END LOOP;

    -- Nothing for PUBLIC: a function is EXECUTE-able by PUBLIC unless revoked.
    REVOKE ALL ON SCHEMA guard FROM PUBLIC;
    REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA guard FROM PUBLIC;
    -- Functions the owner role creates later start without PUBLIC's EXECUTE too. (A per-schema
    -- default cannot take away the global default's EXECUTE, hence no IN SCHEMA.)
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC', owner_role
    );

    -- The owner role: what its SECURITY DEFINER functions, detection, reconciliation and the
    -- jobs read and correct on the application's tables.
    EXECUTE format('GRANT SELECT, UPDATE ON TABLE public.calls, public.appointments TO %I', owner_role);
    EXECUTE format('GRANT SELECT ON TABLE public.companies TO %I', owner_role);

    -- The application: its own booking tables, the settings its triggers read, and the
    -- functions it calls (directly, or through the triggers on calls and appointments).
    EXECUTE format('GRANT USAGE ON SCHEMA guard TO %I', app_role);
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.companies, public.customers,'
        ' public.services, public.calls, public.appointments TO %I',
        app_role
    );
    EXECUTE format('GRANT SELECT ON TABLE guard.settings, guard.rules TO %I', app_role);
    FOR obj IN
        SELECT f.signature::regprocedure::text AS object_name
        FROM unnest(ARRAY[
            'guard.setting(text)',
            'guard.current_company()',
            'guard.validate_booking(bigint, bigint, text)',
            'guard.record_validation(bigint, bigint, bigint, boolean, text, double precision)',
            'guard.rollback_booking(bigint, text, jsonb)',
            'guard.check_call(bigint)',
            'guard.correct_call_writes(bigint[], text)',
            'guard.refresh_call_flags(bigint[], bigint[], text, boolean)'
        ]) AS f (signature)
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', obj.object_name, app_role);
    END LOOP;

    -- Reporting and reviewer: read-only, the BI views and, because those views are
    -- security_invoker, the tables behind them (row-level security limits both to the companies
    -- bound to the role, guard.tenant_bindings);
    -- never the raw phone numbers.
    SELECT string_agg(format('%I', col.name), ', ' ORDER BY col.ord) INTO calls_columns
    FROM unnest(ARRAY[
        'id', 'company_id', 'retell_call_id', 'status', 'direction', 'customer_id',
        'customer_link_status', 'customer_link_method', 'customer_link_confidence',
        'customer_linked_at', 'session_outcome', 'appointment_made', 'appointment_link_status',
        'appointment_linked_at', 'booking_id', 'booking_details', 'booking_confirmed',
        'booking_failed', 'booking_failure_reason', 'requires_manual_processing', 'created_at',
        'updated_at'
    ]) WITH ORDINALITY AS col (name, ord);
    SELECT string_agg(format('%I', col.name), ', ' ORDER BY col.ord) INTO appointments_columns
    FROM unnest(ARRAY[
        'id', 'company_id', 'call_id', 'customer_id', 'service_id', 'calcom_v2_booking_id',
        'source', 'status', 'starts_at', 'ends_at', 'created_at', 'updated_at', 'deleted_at'
    ]) WITH ORDINALITY AS col (name, ord);
    FOREACH reader IN ARRAY ARRAY[guard.role('reporting'), guard.role('reviewer')] LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA guard TO %I', reader);
        FOR obj IN
            SELECT c.oid::regclass::text AS object_name
            FROM pg_class AS c
            WHERE
                c.relnamespace = 'guard'::regnamespace
                AND (
                    (c.relkind = 'v' AND c.relname LIKE 'check\_%')
                    OR c.relname IN (
                        'daily_report_view', 'kpis', 'validation_latency_daily', 'job_status',
                        'calls_report', 'alerts', 'review_items', 'daily_reports',
                        'correction_audit', 'validation_metrics', 'breaker_events', 'settings',
                        'jobs', 'job_runs',
                        -- tenants: guard.visible_companies reads the bindings with the
                        -- reader's rights (a policy shows each role only its own)
                        'tenant_bindings'
                    )
                )
            ORDER BY 1
        LOOP
            EXECUTE format('GRANT SELECT ON TABLE %s TO %I', obj.object_name, reader);
        END LOOP;
        EXECUTE format('GRANT SELECT (id, name) ON TABLE public.companies TO %I', reader);
        EXECUTE format('GRANT SELECT (%s) ON TABLE public.calls TO %I', calls_columns, reader);
        EXECUTE format(
            'GRANT SELECT (%s) ON TABLE public.appointments TO %I', appointments_columns, reader
        );
        EXECUTE format(
            'GRANT EXECUTE ON FUNCTION guard.current_company(), guard.setting(text),'
            ' guard.mask_phone(text) TO %I',
            reader
        );
        -- tenants: the row-level security policies and guard.calls_report call it as the reader
        -- (found in the catalog, like the relations above: nothing to grant before it exists)
        FOR obj IN
            SELECT p.oid::regprocedure::text AS object_name
            FROM pg_proc AS p
            WHERE p.pronamespace = 'guard'::regnamespace AND p.proname = 'visible_companies'
        LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', obj.object_name, reader);
        END LOOP;
    END LOOP;

    -- Reviewer: works the review queue of its companies (review_claim and review_close run with
    -- its rights, under row-level security). claimed_by and closed_by are its free-text labels;
    -- the login is recorded in claimed_by_role and closed_by_role by a trigger, not granted.
    EXECUTE format(
        'GRANT UPDATE (status, claimed_by, claimed_at, closed_by, closed_at, note, false_positive)'
        ' ON TABLE guard.review_items TO %I',
        guard.role('reviewer')
    );
    EXECUTE format(
        'GRANT EXECUTE ON FUNCTION guard.review_claim(text, integer),'
        ' guard.review_close(bigint, text, text, text, boolean) TO %I',
        guard.role('reviewer')
    );
END;
$$;

-- Ownership and privileges again, for the tenant objects (guard.tenant_bindings and its
-- functions), which are defined after the first run of guard.apply_grants.
DO $$
BEGIN
    PERFORM guard.apply_grants();
END;
$$;
