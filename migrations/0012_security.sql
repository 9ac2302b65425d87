-- Security: group roles (names configurable in guard.role_names), every guard object
-- owned by the owner role, least-privilege grants (guard.apply_grants), SECURITY DEFINER with a
-- fixed search_path only where the application must write what it may not write itself, row-level
-- security by company, and masked phone numbers for reporting (guard.calls_report).
-- Role names: set booking_guard.role_owner, booking_guard.role_application,
-- booking_guard.role_reporting, booking_guard.role_reviewer before applying (PGOPTIONS, or
-- ALTER DATABASE ... SET) to use your own; see docs/security.md. The migrating user needs
-- CREATEROLE (or the roles must exist) and becomes a member of the owner role.

-- The four kinds of role Booking Guard grants to, and the role name each kind has in this
-- database. Filled once, when the security migration runs, from the settings
-- booking_guard.role_owner, booking_guard.role_application, booking_guard.role_reporting and
-- booking_guard.role_reviewer (PGOPTIONS, or ALTER DATABASE ... SET before applying), with the
-- defaults guard_owner, guard_app, guard_reporting and guard_reviewer.
CREATE TABLE guard.role_names (
    kind text PRIMARY KEY CHECK (kind IN ('owner', 'application', 'reporting', 'reviewer')),
    role_name text NOT NULL UNIQUE CHECK (role_name <> '')
);

COMMENT ON TABLE guard.role_names IS
'Role name of each kind of Booking Guard role in this database (see docs/security.md).';

INSERT INTO guard.role_names (kind, role_name)
SELECT
    k.kind,
    coalesce(
        nullif(btrim(current_setting('booking_guard.role_' || k.kind, TRUE)), ''), k.default_name
    ) AS role_name
FROM (
    VALUES
    ('owner', 'guard_owner'),
    ('application', 'guard_app'),
    ('reporting', 'guard_reporting'),
    ('reviewer', 'guard_reviewer')
) AS k (kind, default_name);

-- The role name of one kind of Booking Guard role (owner, application, reporting, reviewer) in
-- this database, from guard.role_names. An unknown kind is an error, never a silent NULL.
CREATE FUNCTION guard.role(role_kind text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog
AS $$
DECLARE
    found_name text;
BEGIN
    SELECT r.role_name INTO found_name FROM guard.role_names AS r WHERE r.kind = role_kind;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown Booking Guard role kind "%"', role_kind
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN found_name;
END;
$$;

-- The four group roles (NOLOGIN; people and services log in as members of them). A role that
-- exists already (another database of this cluster, or a DBA's own role named in
-- guard.role_names) is used as it is. The migrating user becomes a member of the owner role, so
-- that it may hand Booking Guard's objects over to it and keep maintaining them.
DO $$
DECLARE
    wanted record;
BEGIN
    FOR wanted IN SELECT r.kind, r.role_name FROM guard.role_names AS r ORDER BY r.kind LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS pr WHERE pr.rolname = wanted.role_name) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', wanted.role_name);
        END IF;
    END LOOP;
    IF guard.role('owner') <> current_user
        AND NOT pg_catalog.pg_has_role(current_user, guard.role('owner'), 'MEMBER') THEN
        EXECUTE format('GRANT %I TO %I', guard.role('owner'), current_user);
    END IF;
END;
$$;

-- The tenant of this session: the setting booking_guard.company_id, which the application or BI
-- connection sets (SET booking_guard.company_id = '42', or in its connection options). Unset or
-- empty: NULL, and the row-level security policies then show no tenant's rows.
-- No SET search_path on purpose: every name is qualified, and a function with a SET clause is
-- never inlined, while this one is evaluated by the row-level security policies for every row
-- they filter. It runs with the caller's rights (SECURITY INVOKER).
CREATE FUNCTION guard.current_company()
RETURNS bigint
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT nullif(pg_catalog.current_setting('booking_guard.company_id', TRUE), '')::bigint;
$$;

-- Refuse to act on another tenant's row: SECURITY DEFINER functions the application calls with a
-- call id run as the owner, which row-level security does not restrict, so they check the row's
-- company against the session's tenant (guard.current_company) themselves. No tenant set (a job,
-- an application connection that serves every company): nothing to check.
CREATE FUNCTION guard.assert_tenant(row_company_id bigint)
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

-- Mask a phone number for reporting: the country and area prefix and the last three digits stay,
-- every other digit becomes a star: +49 30 1234567 becomes +49 30 ****567. Without separators
-- the plus sign and two digits stay (+49301234567 becomes +49******567). At least four digits are
-- always hidden: when the last group is shorter than seven digits only the first group stays, and
-- when even that leaves fewer than seven digits to mask only a leading plus sign stays. Input with
-- fewer than seven digits, or anything that is not a phone number, is masked entirely (***).
-- NULL stays NULL.
CREATE FUNCTION guard.mask_phone(phone text)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog
AS $$
DECLARE
    number text := btrim(phone);
    digits integer;
    kept text;
    rest text;
BEGIN
    IF phone IS NULL THEN
        RETURN NULL;
    END IF;
    IF number !~ '^\+?[0-9(][0-9 ()./-]*[0-9]$' THEN
        RETURN '***';
    END IF;
    digits := length(regexp_replace(number, '[^0-9]', '', 'g'));
    IF digits < 7 THEN
        RETURN '***';
    END IF;
    IF number !~ '[^0-9+]' THEN
        -- no separators: keep the '+' and two digits
        kept := substring(number FROM '^\+?[0-9]{2}');
    ELSIF length(substring(number FROM '([0-9]+)$')) >= 7 THEN
        -- keep every group before the last (country and area code)
        kept := substring(number FROM '^(.*[^0-9])[0-9]+$');
    ELSE
        -- a short last group: keep the first group only
        kept := substring(number FROM '^(\+?[(]?[0-9]+[^0-9]+)');
    END IF;
    kept := coalesce(kept, '');
    rest := substring(number FROM length(kept) + 1);
    IF length(regexp_replace(rest, '[^0-9]', '', 'g')) < 7 THEN
        -- what is left would hide fewer than four digits: keep only a leading '+'
        kept := substring(number FROM '^\+?');
        rest := substring(number FROM length(kept) + 1);
    END IF;
    RETURN kept
        || regexp_replace(left(rest, length(rest) - 3), '[0-9]', '*', 'g')
        || right(rest, 3);
END;
$$;

-- I3, I4: recompute the booking flags of the given calls from their active appointments and
-- correct the rows that differ, in one set-based statement. Every path that can unbook a call
-- derives its flags here (a new appointment only ever books: see sync_flags_after_appointment_insert).
--   lost_from     calls that just lost an active appointment: with none left, a booked outcome
--                 becomes appointment_cancelled and the booking is no longer confirmed
--   audit_reason  the calls were written by someone else (the application, a legacy load): each
--                 correction is audited with before and after, and one alert per company raised
--   check_only    count the calls that would change, change nothing
-- An appointment is active unless it is cancelled or soft-deleted, and it counts only for a call
-- of its own company (a cross-tenant link on an adopted database books nothing). A booked outcome without an
-- appointment is left alone here: it is legitimate during the grace period (detection's job).
-- SECURITY DEFINER: the application's writes fire it (through its triggers) and it writes the
-- correction audit and alerts, which the application may not write itself.
CREATE OR REPLACE FUNCTION guard.refresh_call_flags(
    call_ids bigint[],
    lost_from bigint[] DEFAULT '{}',
    audit_reason text DEFAULT NULL,
    check_only boolean DEFAULT FALSE
)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    differing integer;
BEGIN
    -- A session with a tenant set may only touch that tenant's calls.
    IF guard.current_company() IS NOT NULL THEN
        PERFORM guard.assert_tenant(c.company_id)
        FROM public.calls AS c
        WHERE c.id = ANY (call_ids) AND c.company_id IS DISTINCT FROM guard.current_company();
    END IF;
    -- Lock the calls first, in id order, and look at their appointments in the next statement:
    -- under READ COMMITTED its snapshot sees every appointment committed by a writer we waited
    -- for, so concurrent writers cannot leave a call with flags derived from a stale view
    -- (tests/db/test_concurrency.py). The id order keeps two such writers from deadlocking.
    PERFORM FROM public.calls AS c WHERE c.id = ANY (call_ids) ORDER BY c.id FOR NO KEY UPDATE;

    WITH current_state AS (
        SELECT
            c.id,
            c.company_id,
            c.appointment_made,
            c.appointment_link_status,
            c.appointment_linked_at,
            c.session_outcome,
            c.booking_failed,
            c.booking_confirmed,
            c.id = ANY (lost_from) AS lost_one,
            EXISTS (
                SELECT
                FROM public.appointments AS a
                WHERE
                    a.call_id = c.id
                    AND a.company_id = c.company_id
                    AND a.deleted_at IS NULL
                    AND a.status IS DISTINCT FROM 'cancelled'
            ) AS has_active
        FROM public.calls AS c
        WHERE c.id = ANY (call_ids)
    ),

    derived AS (
        SELECT
            s.*,
            s.has_active AS new_made,
            CASE
                WHEN s.has_active THEN 'linked'
                WHEN s.appointment_link_status IS NULL THEN NULL
                ELSE 'unlinked'
            END AS new_link_status,
            CASE
                WHEN s.has_active THEN coalesce(s.appointment_linked_at, now())
                ELSE s.appointment_linked_at
            END AS new_linked_at,
            CASE
                WHEN s.has_active THEN 'appointment_booked'
                WHEN s.lost_one AND s.session_outcome = 'appointment_booked'
                    THEN 'appointment_cancelled'
                ELSE s.session_outcome
            END AS new_outcome,
            s.booking_failed AND NOT s.has_active AS new_failed,
            s.booking_confirmed AND NOT (s.lost_one AND NOT s.has_active) AS new_confirmed
        FROM current_state AS s
    ),

    changed AS (
        SELECT d.*
        FROM derived AS d
        WHERE (
            d.appointment_made, d.appointment_link_status, d.appointment_linked_at,
            d.session_outcome, d.booking_failed, d.booking_confirmed
        ) IS DISTINCT FROM (
            d.new_made, d.new_link_status, d.new_linked_at,
            d.new_outcome, d.new_failed, d.new_confirmed
        )
    ),

    updated AS (
        UPDATE public.calls AS c
        SET
            appointment_made = ch.new_made,
            appointment_link_status = ch.new_link_status,
            appointment_linked_at = ch.new_linked_at,
            session_outcome = ch.new_outcome,
            booking_failed = ch.new_failed,
            booking_confirmed = ch.new_confirmed,
            updated_at = now()
        FROM changed AS ch
        WHERE c.id = ch.id AND NOT check_only
        RETURNING c.id
    ),

    audited AS (
        INSERT INTO guard.correction_audit (
            rule_id, company_id, entity_type, entity_id, before, after, reason, actor
        )
        SELECT
            'I3_appointment_flags',
            ch.company_id,
            'call',
            ch.id,
            jsonb_build_object(
                'appointment_made', ch.appointment_made,
                'appointment_link_status', ch.appointment_link_status,
                'appointment_linked_at', ch.appointment_linked_at,
                'session_outcome', ch.session_outcome,
                'booking_failed', ch.booking_failed,
                'booking_confirmed', ch.booking_confirmed
            ),
            jsonb_build_object(
                'appointment_made', ch.new_made,
                'appointment_link_status', ch.new_link_status,
                'appointment_linked_at', ch.new_linked_at,
                'session_outcome', ch.new_outcome,
                'booking_failed', ch.new_failed,
                'booking_confirmed', ch.new_confirmed
            ),
            audit_reason,
            session_user  -- who wrote: current_user is the owner here (SECURITY DEFINER)
        FROM changed AS ch
        WHERE audit_reason IS NOT NULL AND NOT check_only
        RETURNING company_id, entity_id
    ),

    alerted AS (
        INSERT INTO guard.alerts (
            fingerprint, rule_id, company_id, entity_type, entity_id, severity, message, details
        )
        SELECT
            'I3_appointment_flags:company:' || au.company_id || ':corrected_writes',
            'I3_appointment_flags',
            au.company_id,
            'company',
            au.company_id,
            'medium',
            'booking flags that contradicted the appointments were corrected',
            jsonb_build_object(
                'corrected_calls', count(*),
                'sample_call_ids', (array_agg(au.entity_id ORDER BY au.entity_id))[1:10],
                'reason', audit_reason
            )
        FROM audited AS au
        GROUP BY au.company_id
        ON CONFLICT (fingerprint) WHERE status = 'open' DO UPDATE
            SET
                occurrences = guard.alerts.occurrences + 1,
                last_seen_at = now(),
                details = excluded.details
        RETURNING 1
    )

    SELECT count(*) INTO differing FROM changed;
    RETURN differing;
END;
$$;

-- I3: the application wrote booking flags on these calls. In the rule's correct mode, flags that
-- contradict the appointments are corrected (audited, one alert per company); in reject mode the
-- statement fails. A disabled rule lets the write stand (detection still reports it).
-- SECURITY DEFINER: fired by the application's writes, it reads the rule registry and (through
-- refresh_call_flags, which checks the tenant) writes the audit and alerts.
CREATE OR REPLACE FUNCTION guard.correct_call_writes(call_ids bigint[], reason text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rule_mode text;
    contradicting integer;
BEGIN
    SELECT r.mode INTO rule_mode
    FROM guard.rules AS r
    WHERE r.id = 'I3_appointment_flags' AND r.enabled;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    IF rule_mode = 'reject' THEN
        contradicting := guard.refresh_call_flags(call_ids, check_only => TRUE);
        IF contradicting > 0 THEN
            RAISE EXCEPTION 'booking flags of % call(s) contradict their appointments', contradicting
                USING
                    ERRCODE = 'check_violation',
                    HINT = 'appointment_made and the appointment link are derived from the '
                    || 'appointments table (rule I3_appointment_flags is in reject mode)';
        END IF;
        RETURN 0;
    END IF;
    RETURN guard.refresh_call_flags(call_ids, audit_reason => reason);
END;
$$;

-- Record one post-booking validation and its latency: the one place guard.validation_metrics is
-- written (validate_booking, and the booking path after it rolled a failed booking back, which
-- took the first record with it). SECURITY DEFINER: the application may not write
-- validation_metrics itself; a session with a tenant set may only record for that tenant.
CREATE OR REPLACE FUNCTION guard.record_validation(
    company_id bigint,
    call_id bigint,
    appointment_id bigint,
    ok boolean,
    failure_reason text,
    latency_ms double precision
)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM guard.assert_tenant(record_validation.company_id);
    INSERT INTO guard.validation_metrics (
        company_id, call_id, appointment_id, ok, failure_reason, latency_ms
    ) VALUES (
        record_validation.company_id, record_validation.call_id, record_validation.appointment_id,
        record_validation.ok, record_validation.failure_reason, record_validation.latency_ms
    );
END;
$$;

-- Post-booking validation, in one round trip: the appointment just recorded exists, is active,
-- belongs to the call and the call's company, carries the calendar's booking uid, is recent
-- (validation_recent_seconds), and the call's flags say booked. Returns ok, or the first failing
-- reason with what was expected and found, and the latency. Every call is recorded, with its
-- latency, in guard.validation_metrics (validation_latency_daily gives p50/p95/p99 per day).
-- SECURITY DEFINER: the application calls it and may not write validation_metrics itself; a
-- session with a tenant set may only validate that tenant's calls.
CREATE OR REPLACE FUNCTION guard.validate_booking(call_id bigint, appointment_id bigint, booking_uid text)
RETURNS TABLE (ok boolean, reason text, details jsonb, latency_ms double precision)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    started timestamptz := clock_timestamp();
    the_call record;
    the_appointment record;
BEGIN
    SELECT c.id, c.company_id, c.appointment_made, c.appointment_link_status,
           c.session_outcome, c.booking_failed
    INTO the_call
    FROM public.calls AS c WHERE c.id = validate_booking.call_id;
    IF FOUND THEN
        PERFORM guard.assert_tenant(the_call.company_id);
    END IF;
    SELECT a.id, a.company_id, a.call_id, a.status, a.deleted_at, a.calcom_v2_booking_id,
           a.created_at
    INTO the_appointment
    FROM public.appointments AS a WHERE a.id = validate_booking.appointment_id;

    ok := FALSE;
    IF the_call.id IS NULL THEN
        reason := 'call_missing';
        details := jsonb_build_object('call_id', validate_booking.call_id);
    ELSIF the_appointment.id IS NULL THEN
        reason := 'appointment_missing';
        details := jsonb_build_object('appointment_id', validate_booking.appointment_id);
    ELSIF the_appointment.deleted_at IS NOT NULL OR the_appointment.status = 'cancelled' THEN
        reason := 'appointment_inactive';
        details := jsonb_build_object(
            'status', the_appointment.status, 'deleted_at', the_appointment.deleted_at
        );
    ELSIF the_appointment.call_id IS DISTINCT FROM the_call.id THEN
        reason := 'appointment_not_on_call';
        details := jsonb_build_object(
            'expected_call_id', the_call.id, 'appointment_call_id', the_appointment.call_id
        );
    ELSIF the_appointment.company_id IS DISTINCT FROM the_call.company_id THEN
        reason := 'company_mismatch';
        details := jsonb_build_object(
            'call_company_id', the_call.company_id,
            'appointment_company_id', the_appointment.company_id
        );
    ELSIF the_appointment.calcom_v2_booking_id IS DISTINCT FROM validate_booking.booking_uid THEN
        reason := 'booking_uid_mismatch';
        details := jsonb_build_object(
            'expected', validate_booking.booking_uid,
            'found', the_appointment.calcom_v2_booking_id
        );
    ELSIF the_appointment.created_at < now() - make_interval(
        secs => (guard.setting('validation_recent_seconds') #>> '{}')::integer
    ) THEN
        reason := 'appointment_not_recent';
        details := jsonb_build_object('created_at', the_appointment.created_at);
    ELSIF NOT coalesce(
        the_call.appointment_made
        AND the_call.appointment_link_status = 'linked'
        AND the_call.session_outcome = 'appointment_booked'
        AND NOT the_call.booking_failed,
        FALSE
    ) THEN
        reason := 'call_flags_disagree';
        details := jsonb_build_object(
            'appointment_made', the_call.appointment_made,
            'appointment_link_status', the_call.appointment_link_status,
            'session_outcome', the_call.session_outcome,
            'booking_failed', the_call.booking_failed
        );
    ELSE
        ok := TRUE;
        details := jsonb_build_object('booking_uid', validate_booking.booking_uid);
    END IF;

    latency_ms := 1000 * extract(EPOCH FROM clock_timestamp() - started);
    PERFORM guard.record_validation(
        the_call.company_id, validate_booking.call_id, validate_booking.appointment_id, ok, reason,
        latency_ms
    );
    RETURN NEXT;
END;
$$;

-- Undo a booking that failed, atomically in the caller's transaction: lock the call row (a
-- concurrent writer waits, and this sees its outcome), mark the call failed and for manual
-- processing, raise an alert and queue a review item. The flags are left alone when the call
-- still has an active appointment (an earlier booking stands); the alert and review item are
-- raised either way. reason is the review reason (validation_failure,
-- calendar_booking_failure, customer_creation_failure, service_not_found, other); context is
-- what a reviewer needs (no phone numbers). Returns the review item's id.
-- SECURITY DEFINER: the application calls it and may not write alerts or review items itself;
-- a session with a tenant set may only roll back that tenant's calls.
CREATE OR REPLACE FUNCTION guard.rollback_booking(call_id bigint, reason text, context jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    the_call record;
    still_booked boolean;
BEGIN
    SELECT c.id, c.company_id INTO the_call
    FROM public.calls AS c WHERE c.id = rollback_booking.call_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'call % does not exist', rollback_booking.call_id
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM guard.assert_tenant(the_call.company_id);
    still_booked := EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE
            a.call_id = the_call.id
            AND a.company_id = the_call.company_id
            AND a.deleted_at IS NULL
            AND a.status IS DISTINCT FROM 'cancelled'
    );
    IF NOT still_booked THEN
        UPDATE public.calls AS c
        SET
            session_outcome = 'creation_failed',
            booking_failed = TRUE,
            booking_confirmed = FALSE,
            booking_failure_reason = rollback_booking.reason,
            requires_manual_processing = TRUE,
            updated_at = now()
        WHERE c.id = the_call.id;
    END IF;

    INSERT INTO guard.alerts (
        fingerprint, rule_id, company_id, entity_type, entity_id, severity, message, details
    ) VALUES (
        'booking_rolled_back:call:' || the_call.id,
        'booking_rolled_back',
        the_call.company_id,
        'call',
        the_call.id,
        'high',
        'a booking failed and was rolled back; a review item is queued',
        jsonb_build_object('reason', rollback_booking.reason, 'still_booked', still_booked)
        || coalesce(rollback_booking.context, '{}')
    )
    ON CONFLICT (fingerprint) WHERE status = 'open' DO UPDATE
        SET occurrences = guard.alerts.occurrences + 1, last_seen_at = now();

    RETURN guard.enqueue_review(
        the_call.company_id, the_call.id, NULL, rollback_booking.reason,
        coalesce(rollback_booking.context, '{}') || jsonb_build_object('still_booked', still_booked)
    );
END;
$$;

-- Every rule for one call, right now: what application code calls after a booking (the
-- original design's checkCall). Opens, bumps and resolves that call's alerts like detect does.
-- SECURITY DEFINER: the application calls it and may not write alerts itself (run_detection
-- stays SECURITY INVOKER and runs here with the owner's rights); a session with a tenant set may
-- only check that tenant's calls.
CREATE OR REPLACE FUNCTION guard.check_call(call_id bigint)
RETURNS TABLE (rule_id text, offending integer, opened integer, repeated integer, resolved integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF guard.current_company() IS NOT NULL THEN
        PERFORM guard.assert_tenant(c.company_id)
        FROM public.calls AS c
        WHERE c.id = check_call.call_id;
    END IF;
    RETURN QUERY
    SELECT d.rule_id, d.offending, d.opened, d.repeated, d.resolved
    FROM guard.run_detection(NULL, check_call.call_id) AS d;
END;
$$;

-- The calls as reporting sees them: every reporting column, and the phone numbers masked
-- (guard.mask_phone). The reporting role may read this view but not the raw from_number and
-- to_number of public.calls, so this is the one view in schema guard that is NOT
-- security_invoker: a view running with the reader's rights could not read the raw numbers to
-- mask them. It runs with its owner's rights instead, and therefore filters by the session's
-- tenant itself (guard.current_company(); unset: no rows); security_barrier keeps a reader's
-- own conditions from being evaluated before that filter.
CREATE VIEW guard.calls_report WITH (security_barrier = TRUE) AS
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

-- Row-level security by company on guard.alerts: every role sees and writes only the rows of
-- its session's tenant (guard.current_company(); unset: nothing). FORCE, so that the owner obeys
-- the policies too; the owner's jobs pass by guard.alerts.owner_maintenance.
ALTER TABLE guard.alerts ENABLE ROW LEVEL SECURITY;

ALTER TABLE guard.alerts FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON guard.alerts
FOR ALL
TO public
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());

-- The owner role (detection, reconciliation, jobs, and the SECURITY DEFINER functions) maintains
-- every tenant's rows of guard.alerts. The role name is configurable (guard.role_names).
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY owner_maintenance ON guard.alerts FOR ALL TO %I USING (TRUE) WITH CHECK (TRUE)',
        guard.role('owner')
    );
END;
$$;

-- Row-level security by company on guard.review_items: every role sees and writes only the rows of
-- its session's tenant (guard.current_company(); unset: nothing). FORCE, so that the owner obeys
-- the policies too; the owner's jobs pass by guard.review_items.owner_maintenance.
ALTER TABLE guard.review_items ENABLE ROW LEVEL SECURITY;

ALTER TABLE guard.review_items FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON guard.review_items
FOR ALL
TO public
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());

-- The owner role (detection, reconciliation, jobs, and the SECURITY DEFINER functions) maintains
-- every tenant's rows of guard.review_items. The role name is configurable (guard.role_names).
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY owner_maintenance ON guard.review_items FOR ALL TO %I USING (TRUE) WITH CHECK (TRUE)',
        guard.role('owner')
    );
END;
$$;

-- Row-level security by company on guard.daily_reports: every role sees and writes only the rows of
-- its session's tenant (guard.current_company(); unset: nothing). FORCE, so that the owner obeys
-- the policies too; the owner's jobs pass by guard.daily_reports.owner_maintenance.
ALTER TABLE guard.daily_reports ENABLE ROW LEVEL SECURITY;

ALTER TABLE guard.daily_reports FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON guard.daily_reports
FOR ALL
TO public
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());

-- The owner role (detection, reconciliation, jobs, and the SECURITY DEFINER functions) maintains
-- every tenant's rows of guard.daily_reports. The role name is configurable (guard.role_names).
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY owner_maintenance ON guard.daily_reports FOR ALL TO %I USING (TRUE) WITH CHECK (TRUE)',
        guard.role('owner')
    );
END;
$$;

-- Row-level security by company on guard.correction_audit: every role sees and writes only the rows of
-- its session's tenant (guard.current_company(); unset: nothing). FORCE, so that the owner obeys
-- the policies too; the owner's jobs pass by guard.correction_audit.owner_maintenance.
ALTER TABLE guard.correction_audit ENABLE ROW LEVEL SECURITY;

ALTER TABLE guard.correction_audit FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON guard.correction_audit
FOR ALL
TO public
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());

-- The owner role (detection, reconciliation, jobs, and the SECURITY DEFINER functions) maintains
-- every tenant's rows of guard.correction_audit. The role name is configurable (guard.role_names).
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY owner_maintenance ON guard.correction_audit FOR ALL TO %I USING (TRUE) WITH CHECK (TRUE)',
        guard.role('owner')
    );
END;
$$;

-- Row-level security by company on guard.validation_metrics: every role sees and writes only the rows of
-- its session's tenant (guard.current_company(); unset: nothing). FORCE, so that the owner obeys
-- the policies too; the owner's jobs pass by guard.validation_metrics.owner_maintenance.
ALTER TABLE guard.validation_metrics ENABLE ROW LEVEL SECURITY;

ALTER TABLE guard.validation_metrics FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON guard.validation_metrics
FOR ALL
TO public
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());

-- The owner role (detection, reconciliation, jobs, and the SECURITY DEFINER functions) maintains
-- every tenant's rows of guard.validation_metrics. The role name is configurable (guard.role_names).
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY owner_maintenance ON guard.validation_metrics FOR ALL TO %I USING (TRUE) WITH CHECK (TRUE)',
        guard.role('owner')
    );
END;
$$;

-- Row-level security on the application's table public.calls, enabled (not forced: its owner is
-- not affected) so that reporting and reviewer reads can be limited to their tenant
-- (guard_tenant_only). This permissive policy keeps every other role, the application and its
-- triggers included, exactly as before.
ALTER TABLE public.calls ENABLE ROW LEVEL SECURITY;

CREATE POLICY guard_all_rows ON public.calls
FOR ALL
TO public
USING (TRUE)
WITH CHECK (TRUE);

-- Reporting and reviewer connections read only their tenant's rows of public.calls (the
-- security_invoker check views and guard.calls_report read it with their rights). Restrictive:
-- it narrows guard_all_rows for these two roles only. Role names from guard.role_names.
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY guard_tenant_only ON public.calls AS RESTRICTIVE FOR SELECT TO %I, %I'
        ' USING (company_id = guard.current_company())',
        guard.role('reporting'),
        guard.role('reviewer')
    );
END;
$$;

-- Row-level security on the application's table public.appointments, enabled (not forced: its owner is
-- not affected) so that reporting and reviewer reads can be limited to their tenant
-- (guard_tenant_only). This permissive policy keeps every other role, the application and its
-- triggers included, exactly as before.
ALTER TABLE public.appointments ENABLE ROW LEVEL SECURITY;

CREATE POLICY guard_all_rows ON public.appointments
FOR ALL
TO public
USING (TRUE)
WITH CHECK (TRUE);

-- Reporting and reviewer connections read only their tenant's rows of public.appointments (the
-- security_invoker check views and guard.calls_report read it with their rights). Restrictive:
-- it narrows guard_all_rows for these two roles only. Role names from guard.role_names.
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY guard_tenant_only ON public.appointments AS RESTRICTIVE FOR SELECT TO %I, %I'
        ' USING (company_id = guard.current_company())',
        guard.role('reporting'),
        guard.role('reviewer')
    );
END;
$$;

-- (Re)apply Booking Guard's ownership and privileges from guard.role_names: every object in
-- schema guard is handed to the owner role, PUBLIC loses EXECUTE on the guard functions, and the
-- application, reporting and reviewer roles get exactly what docs/security.md lists. Every
-- migration that creates or re-creates an object in schema guard ends with a DO block that
-- runs PERFORM guard.apply_grants(), so ownership and grants survive DROP and CREATE (CREATE OR
-- REPLACE keeps them anyway). Idempotent; it adds, it never takes a DBA's own grants away
-- (guard db verify reports those). Run by the migrating user, a member of the owner role.
CREATE FUNCTION guard.apply_grants()
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

-- Ownership and privileges of every Booking Guard object, from guard.role_names (see
-- guard.apply_grants). A DO block, not a SELECT: yoyo prints the rows a migration's SELECT
-- returns.
DO $$
BEGIN
    PERFORM guard.apply_grants();
END;
$$;
