-- Back to tenants selected by the setting booking_guard.company_id (0012_security): the policies
-- and guard.calls_report compare company_id with guard.current_company() again, and the
-- bindings, the tenant functions and the recorded review logins are dropped.
DROP TRIGGER review_items_stamp_actor ON guard.review_items;

DROP FUNCTION guard.stamp_review_actor();

ALTER TABLE guard.review_items DROP COLUMN claimed_by_role, DROP COLUMN closed_by_role;

DROP POLICY guard_tenant_only ON public.companies;

DROP POLICY guard_all_rows ON public.companies;

ALTER TABLE public.companies DISABLE ROW LEVEL SECURITY;

ALTER POLICY tenant_isolation ON guard.alerts
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());

ALTER POLICY tenant_isolation ON guard.review_items
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());

ALTER POLICY tenant_isolation ON guard.daily_reports
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());

ALTER POLICY tenant_isolation ON guard.correction_audit
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());

ALTER POLICY tenant_isolation ON guard.validation_metrics
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());

ALTER POLICY guard_tenant_only ON public.calls
USING (company_id = guard.current_company());

ALTER POLICY guard_tenant_only ON public.appointments
USING (company_id = guard.current_company());

-- The calls as reporting sees them: every reporting column, and the phone numbers masked
-- (guard.mask_phone). The reporting role may read this view but not the raw from_number and
-- to_number of public.calls, so this is the one view in schema guard that is NOT
-- security_invoker: a view running with the reader's rights could not read the raw numbers to
-- mask them. It runs with its owner's rights instead, and therefore filters by the session's
-- tenant itself (guard.current_company(); unset: no rows); security_barrier keeps a reader's
-- own conditions from being evaluated before that filter.
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
WHERE c.company_id = guard.current_company();

-- Refuse to act on another tenant's row: SECURITY DEFINER functions the application calls with a
-- call id run as the owner, which row-level security does not restrict, so they check the row's
-- company against the session's tenant (guard.current_company) themselves. No tenant set (a job,
-- an application connection that serves every company): nothing to check.
CREATE OR REPLACE FUNCTION guard.assert_tenant(row_company_id bigint)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog
AS $$
DECLARE
    tenant bigint := guard.current_company();
BEGIN
    IF tenant IS NOT NULL AND row_company_id IS DISTINCT FROM tenant THEN
        RAISE EXCEPTION 'permission denied: the row belongs to another company than the session''s tenant (%)',
            tenant
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END;
$$;

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
    -- security_invoker, the tables behind them (row-level security limits both to their tenant);
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
                        'jobs', 'job_runs'
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
    END LOOP;

    -- Reviewer: works the review queue of its tenant (review_claim and review_close run with
    -- its rights, under row-level security).
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

-- Rule booking_failure_anomaly (I7): a company whose booking-failure rate in the recent window
-- (failure_window_minutes) is anomaly_factor times its usual rate for that hour of the week,
-- the usual rate being the same window 1 to 4 weeks earlier. Fewer than anomaly_min_failures
-- failures never count. Five index range scans on calls.created_at, whatever the table size.
CREATE OR REPLACE VIEW guard.check_booking_failure_anomaly WITH (security_invoker = TRUE) AS
WITH params AS (
    SELECT
        max((s.value #>> '{}')::integer) FILTER (WHERE s.key = 'failure_window_minutes') AS window_minutes,
        max((s.value #>> '{}')::numeric) FILTER (WHERE s.key = 'anomaly_factor') AS factor,
        max((s.value #>> '{}')::integer) FILTER (WHERE s.key = 'anomaly_min_failures') AS min_failures
    FROM guard.settings AS s
    WHERE s.key IN ('failure_window_minutes', 'anomaly_factor', 'anomaly_min_failures')
),

windows AS (
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
CREATE OR REPLACE VIEW guard.check_recent_booking_failure WITH (security_invoker = TRUE) AS
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
FROM public.calls AS c
WHERE
    (c.session_outcome = 'creation_failed' OR c.booking_failed)
    AND c.created_at >= now() - make_interval(
        mins => (
            SELECT (s.value #>> '{}')::integer FROM guard.settings AS s
            WHERE s.key = 'failure_window_minutes'
        )
    );

DROP FUNCTION guard.tenant_list();

DROP FUNCTION guard.tenant_revoke(text, bigint);

DROP FUNCTION guard.tenant_grant(text, bigint);

DROP FUNCTION guard.login_companies();

DROP FUNCTION guard.visible_companies();

DROP TABLE guard.tenant_bindings;

-- Ownership and privileges of every Booking Guard object, from guard.role_names (see
-- guard.apply_grants). A DO block, not a SELECT: yoyo prints the rows a migration's SELECT
-- returns.
DO $$
BEGIN
    PERFORM guard.apply_grants();
END;
$$;
