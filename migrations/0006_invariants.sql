-- Invariants I1-I5 enforced in the database (the invariant catalogue: docs/invariants.md).
-- Normalisers are BEFORE ROW triggers without side effects; the booking flags are derived by
-- AFTER ... FOR EACH STATEMENT triggers with transition tables, one set-based statement per
-- firing. Constraints are added NOT VALID: new writes are checked at once, old rows are left for
-- `guard db validate` (reconcile what is safe, then validate without blocking writes). On tables
-- Booking Guard created itself, the end of this migration validates them right away.

-- The invariant catalogue (docs/invariants.md). stage: observe (detected), correct (corrected on write,
-- constraints not yet validated on old rows), enforce (constraints validated).
INSERT INTO guard.rules (
    id, invariant, severity, description, remedy, mode, stage, constraint_names
) VALUES
(
    'I1_call_direction', 'I1', 'medium',
    'Every call has direction inbound or outbound; a missing one becomes inbound.',
    'auto_fix', 'correct', 'correct', '{guard_calls_direction_check}'
),
(
    'I2_customer_link', 'I2', 'medium',
    'customer_id is set exactly when the link is complete (status linked, linked_at, method, '
    || 'confidence 0-100); otherwise the call is unlinked or anonymous.',
    'auto_fix', 'correct', 'correct',
    '{guard_calls_customer_link_check,guard_calls_link_confidence_range}'
),
(
    'I3_appointment_flags', 'I3', 'high',
    'appointment_made and the appointment link agree with the active appointments of the call.',
    'auto_fix', 'correct', 'correct', '{}'
),
(
    'I4_booked_outcome', 'I4', 'critical',
    'An active appointment means session_outcome appointment_booked; a booked outcome without '
    || 'an appointment is allowed only for the grace period.',
    'review', 'correct', 'observe', '{}'
),
(
    'I5_tenant_link', 'I5', 'critical',
    'An appointment and its call belong to the same company.',
    'report', 'reject', 'correct',
    '{guard_appointments_call_company_fkey,guard_appointments_company_required}'
),
(
    'I6_voice_appointment_call', 'I6', 'high',
    'A voice-agent appointment (source retell_webhook) has a call.',
    'review', 'correct', 'observe', '{}'
),
(
    'I7_booking_failures', 'I7', 'high',
    'Booking failures are visible; a spike against the usual rate raises an alert.',
    'report', 'correct', 'observe', '{}'
);

-- I1: a call has a direction, inbound or outbound. The CHECK is what lets NOT NULL be set on a
-- large adopted table without a scan (PostgreSQL uses a validated CHECK as proof).
ALTER TABLE public.calls ADD CONSTRAINT guard_calls_direction_check
CHECK (direction IS NOT NULL AND direction IN ('inbound', 'outbound')) NOT VALID;

-- I2: a linked customer has a complete link; no customer means unlinked or anonymous.
-- coalesce(..., FALSE): a CHECK passes on NULL, and a NULL status must fail.
ALTER TABLE public.calls ADD CONSTRAINT guard_calls_customer_link_check
CHECK (
    coalesce(
        CASE
            WHEN customer_id IS NOT NULL
                THEN
                    customer_link_status = 'linked'
                    AND customer_linked_at IS NOT NULL
                    AND customer_link_method IS NOT NULL
                    AND customer_link_confidence IS NOT NULL
            ELSE customer_link_status IN ('unlinked', 'anonymous')
        END,
        FALSE
    )
) NOT VALID;

-- I2: link confidence is a percentage.
ALTER TABLE public.calls ADD CONSTRAINT guard_calls_link_confidence_range
CHECK (customer_link_confidence BETWEEN 0 AND 100) NOT VALID;

-- I5: without a company the composite foreign key below would not be checked (MATCH SIMPLE).
ALTER TABLE public.appointments ADD CONSTRAINT guard_appointments_company_required
CHECK (company_id IS NOT NULL) NOT VALID;

-- I5: an appointment's call belongs to the appointment's company. No write can link across
-- tenants: the database refuses it.
ALTER TABLE public.appointments ADD CONSTRAINT guard_appointments_call_company_fkey
FOREIGN KEY (call_id, company_id) REFERENCES public.calls (id, company_id) NOT VALID;

-- I1, BEFORE ROW on calls: a missing or blank direction becomes inbound, case is folded.
-- Any other value is left for the CHECK to refuse: guessing would hide a bug.
CREATE FUNCTION guard.normalise_call_direction()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NEW.direction := coalesce(nullif(lower(btrim(NEW.direction)), ''), 'inbound');
    RETURN NEW;
END;
$$;

-- I2, BEFORE ROW on calls: the customer link fields follow customer_id. A linked customer gets
-- status linked and, where the writer said nothing, linked_at now() and the default method and
-- confidence; a newly linked customer does not inherit the previous customer's link details.
-- No customer: anonymous for callers without a usable number, unlinked otherwise.
CREATE FUNCTION guard.normalise_customer_link()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF NEW.customer_id IS NULL THEN
        NEW.customer_link_status := CASE
            WHEN NEW.customer_link_status = 'anonymous'
                OR nullif(btrim(coalesce(NEW.from_number, '')), '') IS NULL
                OR lower(btrim(NEW.from_number)) IN ('anonymous', 'unknown', 'restricted', 'private')
                THEN 'anonymous'
            ELSE 'unlinked'
        END;
        NEW.customer_linked_at := NULL;
        NEW.customer_link_method := NULL;
        NEW.customer_link_confidence := NULL;
        RETURN NEW;
    END IF;

    IF TG_OP = 'UPDATE' AND NEW.customer_id IS DISTINCT FROM OLD.customer_id THEN
        IF NEW.customer_linked_at IS NOT DISTINCT FROM OLD.customer_linked_at THEN
            NEW.customer_linked_at := NULL;
        END IF;
        IF NEW.customer_link_method IS NOT DISTINCT FROM OLD.customer_link_method THEN
            NEW.customer_link_method := NULL;
        END IF;
        IF NEW.customer_link_confidence IS NOT DISTINCT FROM OLD.customer_link_confidence THEN
            NEW.customer_link_confidence := NULL;
        END IF;
    END IF;

    NEW.customer_link_status := 'linked';
    NEW.customer_linked_at := coalesce(NEW.customer_linked_at, now());
    NEW.customer_link_method := coalesce(
        NEW.customer_link_method, guard.setting('default_customer_link_method') #>> '{}'
    );
    NEW.customer_link_confidence := coalesce(
        NEW.customer_link_confidence,
        (guard.setting('default_customer_link_confidence') #>> '{}')::numeric
    );
    RETURN NEW;
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
CREATE FUNCTION guard.refresh_call_flags(
    call_ids bigint[],
    lost_from bigint[] DEFAULT '{}',
    audit_reason text DEFAULT NULL,
    check_only boolean DEFAULT FALSE
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    differing integer;
BEGIN
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
            rule_id, company_id, entity_type, entity_id, before, after, reason
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
            audit_reason
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
CREATE FUNCTION guard.correct_call_writes(call_ids bigint[], reason text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
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

-- I3, AFTER INSERT ... FOR EACH STATEMENT on appointments: calls that received an active
-- appointment are booked. The answer does not depend on anything else, so it is one set-based
-- UPDATE of those calls (the statement an application would write by hand), unconditional on
-- purpose: its row lock, and READ COMMITTED's re-check of the latest row version, serialise it
-- with a concurrent writer that is unbooking the same call (tests/db/test_concurrency.py).
-- Skipping calls that already look booked would decide from a possibly stale snapshot.
CREATE FUNCTION guard.sync_flags_after_appointment_insert()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    booked_calls bigint[];
BEGIN
    SELECT array_agg(DISTINCT n.call_id) INTO booked_calls
    FROM new_rows AS n
    WHERE n.call_id IS NOT NULL AND n.deleted_at IS NULL AND n.status IS DISTINCT FROM 'cancelled';
    IF booked_calls IS NOT NULL THEN
        UPDATE public.calls AS c
        SET
            appointment_made = TRUE,
            appointment_link_status = 'linked',
            appointment_linked_at = coalesce(c.appointment_linked_at, now()),
            session_outcome = 'appointment_booked',
            booking_failed = FALSE,
            updated_at = now()
        WHERE c.id = ANY (booked_calls);
    END IF;
    RETURN NULL;
END;
$$;

-- I3, AFTER UPDATE ... FOR EACH STATEMENT on appointments: recompute the calls on both sides of
-- every appointment whose call, company or activeness (status, soft delete) changed.
-- The changed rows are found with EXCEPT over the two transition tables, never with a join of
-- them: a cached nested-loop plan from a one-row firing made such a join quadratic (measured: 56 s instead of 2.5 s for 100k rows).
CREATE FUNCTION guard.sync_flags_after_appointment_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    touched_calls bigint[];
    lost_calls bigint[];
BEGIN
    WITH before_state AS (
        SELECT
            o.id,
            o.call_id,
            o.company_id,
            (o.deleted_at IS NULL AND o.status IS DISTINCT FROM 'cancelled') AS active
        FROM old_rows AS o
    ),

    after_state AS (
        SELECT
            n.id,
            n.call_id,
            n.company_id,
            (n.deleted_at IS NULL AND n.status IS DISTINCT FROM 'cancelled') AS active
        FROM new_rows AS n
    ),

    gone AS (
        SELECT * FROM before_state
        EXCEPT
        SELECT * FROM after_state
    ),

    came AS (
        SELECT * FROM after_state
        EXCEPT
        SELECT * FROM before_state
    ),

    moved AS (
        SELECT g.call_id, g.active AS lost_active FROM gone AS g
        UNION ALL
        SELECT c.call_id, FALSE FROM came AS c
    )

    SELECT
        array_agg(DISTINCT m.call_id),
        coalesce(array_agg(DISTINCT m.call_id) FILTER (WHERE m.lost_active), '{}')
    INTO touched_calls, lost_calls
    FROM moved AS m
    WHERE m.call_id IS NOT NULL;

    IF touched_calls IS NOT NULL THEN
        PERFORM guard.refresh_call_flags(touched_calls, lost_from => lost_calls);
    END IF;
    RETURN NULL;
END;
$$;

-- I3, AFTER DELETE ... FOR EACH STATEMENT on appointments: calls that lost an active appointment
-- keep their flags only while another active appointment remains.
CREATE FUNCTION guard.sync_flags_after_appointment_delete()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    lost_calls bigint[];
BEGIN
    SELECT array_agg(DISTINCT o.call_id) INTO lost_calls
    FROM old_rows AS o
    WHERE o.call_id IS NOT NULL AND o.deleted_at IS NULL AND o.status IS DISTINCT FROM 'cancelled';
    IF lost_calls IS NOT NULL THEN
        PERFORM guard.refresh_call_flags(lost_calls, lost_from => lost_calls);
    END IF;
    RETURN NULL;
END;
$$;

-- I3, AFTER INSERT ... FOR EACH STATEMENT on calls: a new call cannot have appointments yet, so
-- one that claims a made or linked booking is corrected (or refused, in reject mode).
CREATE FUNCTION guard.correct_flags_after_call_insert()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    claiming_calls bigint[];
BEGIN
    SELECT array_agg(n.id) INTO claiming_calls
    FROM new_rows AS n
    WHERE n.appointment_made OR n.appointment_link_status = 'linked';
    IF claiming_calls IS NOT NULL THEN
        PERFORM guard.correct_call_writes(
            claiming_calls, 'a new call claimed a booking its appointments do not show'
        );
    END IF;
    RETURN NULL;
END;
$$;

-- I3, AFTER UPDATE ... FOR EACH STATEMENT on calls: calls whose booking flags the writer changed
-- are checked against their appointments. Writes by Booking Guard's own triggers (depth > 1) are
-- derived already. Changed rows are found with EXCEPT, not a join of the transition tables.
CREATE FUNCTION guard.correct_flags_after_call_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    written_calls bigint[];
BEGIN
    IF pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(w.id) INTO written_calls
    FROM (
        SELECT
            n.id,
            n.appointment_made,
            n.appointment_link_status,
            n.appointment_linked_at,
            n.session_outcome,
            n.booking_failed
        FROM new_rows AS n
        EXCEPT
        SELECT
            o.id,
            o.appointment_made,
            o.appointment_link_status,
            o.appointment_linked_at,
            o.session_outcome,
            o.booking_failed
        FROM old_rows AS o
    ) AS w;
    IF written_calls IS NOT NULL THEN
        PERFORM guard.correct_call_writes(
            written_calls, 'an update wrote booking flags that contradict the appointments'
        );
    END IF;
    RETURN NULL;
END;
$$;

-- A rule enforced by constraints is at stage enforce once all of them are validated, and at
-- stage correct while any is still NOT VALID. Rules without constraints keep their stage.
CREATE FUNCTION guard.refresh_rule_stages()
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    UPDATE guard.rules AS r
    SET stage = CASE WHEN v.all_valid THEN 'enforce' ELSE 'correct' END
    FROM (
        SELECT
            rr.id,
            bool_and(coalesce(k.convalidated, FALSE)) AS all_valid
        FROM guard.rules AS rr
        CROSS JOIN LATERAL unnest(rr.constraint_names) AS cn (name)
        LEFT JOIN pg_catalog.pg_constraint AS k
            ON
                k.conname = cn.name
                AND k.conrelid IN ('public.calls'::regclass, 'public.appointments'::regclass)
        GROUP BY rr.id
    ) AS v
    WHERE r.id = v.id AND r.stage IS DISTINCT FROM CASE WHEN v.all_valid THEN 'enforce' ELSE 'correct' END;
$$;

-- Staged enforcement: bring the calls with from_id <= id < to_id in line with I1, I2 and I3, so
-- the NOT VALID constraints can be validated. Only what is safe is changed (a missing direction,
-- an incomplete customer link, flags derived from appointments); every change is audited.
-- An updated row is checked against every constraint, validated or not, so all of a row's
-- problems are fixed in one UPDATE, and rows holding a value no rule can decide (an unknown
-- direction, a confidence out of range) are not touched at all: validation then reports them
-- and they wait for a person (rule_name 'needs_review' counts them).
CREATE FUNCTION guard.reconcile_call_batch(from_id bigint, to_id bigint)
RETURNS TABLE (rule_name text, corrected integer)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    fixable_calls bigint[];
    directions_fixed integer;
    links_fixed integer;
    undecidable_rows integer;
BEGIN
    WITH batch AS (
        SELECT
            c.id,
            c.company_id,
            c.direction,
            c.customer_id,
            c.customer_link_status,
            c.customer_link_method,
            c.customer_link_confidence,
            c.customer_linked_at,
            (
                c.direction IS NOT NULL
                AND coalesce(nullif(lower(btrim(c.direction)), ''), 'inbound')
                NOT IN ('inbound', 'outbound')
            )
            OR coalesce(c.customer_link_confidence NOT BETWEEN 0 AND 100, FALSE) AS undecidable,
            c.direction IS NULL OR c.direction IS DISTINCT FROM lower(btrim(c.direction))
            AS direction_wrong,
            NOT coalesce(
                CASE
                    WHEN c.customer_id IS NOT NULL
                        THEN
                            c.customer_link_status = 'linked'
                            AND c.customer_linked_at IS NOT NULL
                            AND c.customer_link_method IS NOT NULL
                            AND c.customer_link_confidence IS NOT NULL
                    ELSE c.customer_link_status IN ('unlinked', 'anonymous')
                END,
                FALSE
            ) AS link_wrong
        FROM public.calls AS c
        WHERE c.id >= from_id AND c.id < to_id
    ),

    to_fix AS (
        SELECT b.* FROM batch AS b
        WHERE NOT b.undecidable AND (b.direction_wrong OR b.link_wrong)
    ),

    -- The normalisers do the work: SET col = col fires the BEFORE ROW triggers of I1 and I2.
    fixed AS (
        UPDATE public.calls AS c
        SET direction = c.direction, customer_id = c.customer_id
        FROM to_fix AS t
        WHERE c.id = t.id
        RETURNING
            c.id,
            c.direction,
            c.customer_link_status,
            c.customer_link_method,
            c.customer_link_confidence,
            c.customer_linked_at
    ),

    audited AS (
        INSERT INTO guard.correction_audit (
            rule_id, company_id, entity_type, entity_id, before, after, reason
        )
        SELECT
            'I1_call_direction',
            t.company_id,
            'call',
            t.id,
            jsonb_build_object('direction', t.direction),
            jsonb_build_object('direction', f.direction),
            'legacy row: missing or unnormalised direction'
        FROM to_fix AS t INNER JOIN fixed AS f ON t.id = f.id
        WHERE t.direction_wrong
        UNION ALL
        SELECT
            'I2_customer_link',
            t.company_id,
            'call',
            t.id,
            jsonb_build_object(
                'customer_id', t.customer_id,
                'customer_link_status', t.customer_link_status,
                'customer_link_method', t.customer_link_method,
                'customer_link_confidence', t.customer_link_confidence,
                'customer_linked_at', t.customer_linked_at
            ),
            jsonb_build_object(
                'customer_id', t.customer_id,
                'customer_link_status', f.customer_link_status,
                'customer_link_method', f.customer_link_method,
                'customer_link_confidence', f.customer_link_confidence,
                'customer_linked_at', f.customer_linked_at
            ),
            'legacy row: incomplete customer link'
        FROM to_fix AS t INNER JOIN fixed AS f ON t.id = f.id
        WHERE t.link_wrong
        RETURNING rule_id
    )

    SELECT
        count(*) FILTER (WHERE a.rule_id = 'I1_call_direction'),
        count(*) FILTER (WHERE a.rule_id = 'I2_customer_link'),
        (SELECT count(*) FROM batch AS b WHERE b.undecidable)
    INTO directions_fixed, links_fixed, undecidable_rows
    FROM audited AS a;

    SELECT array_agg(c.id) INTO fixable_calls
    FROM public.calls AS c
    WHERE
        c.id >= from_id AND c.id < to_id
        AND NOT coalesce(
            c.customer_link_confidence NOT BETWEEN 0 AND 100
            OR c.direction NOT IN ('inbound', 'outbound'),
            FALSE
        );
    rule_name := 'I1_call_direction';
    corrected := directions_fixed;
    RETURN NEXT;
    rule_name := 'I2_customer_link';
    corrected := links_fixed;
    RETURN NEXT;
    rule_name := 'I3_appointment_flags';
    corrected := CASE
        WHEN fixable_calls IS NULL THEN 0
        ELSE guard.refresh_call_flags(
            fixable_calls, audit_reason => 'legacy row: flags contradicted the appointments'
        )
    END;
    RETURN NEXT;
    rule_name := 'needs_review';
    corrected := undecidable_rows;
    RETURN NEXT;
END;
$$;

-- I1: a missing direction becomes inbound before the row is stored.
CREATE TRIGGER guard_calls_normalise_direction
BEFORE INSERT OR UPDATE OF direction ON public.calls
FOR EACH ROW EXECUTE FUNCTION guard.normalise_call_direction();

-- I2: the customer link fields follow customer_id.
CREATE TRIGGER guard_calls_normalise_customer_link
BEFORE INSERT OR UPDATE OF customer_id, customer_link_status, customer_link_method, customer_link_confidence, customer_linked_at, from_number ON public.calls
FOR EACH ROW EXECUTE FUNCTION guard.normalise_customer_link();

-- I3: a new call claiming a booking it does not have is corrected.
CREATE TRIGGER guard_calls_correct_flags_insert
AFTER INSERT ON public.calls
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.correct_flags_after_call_insert();

-- I3: booking flags written by the application are checked against the appointments.
CREATE TRIGGER guard_calls_correct_flags_update
AFTER UPDATE ON public.calls
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.correct_flags_after_call_update();

-- I3: a new active appointment makes its call booked.
CREATE TRIGGER guard_appointments_sync_insert
AFTER INSERT ON public.appointments
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.sync_flags_after_appointment_insert();

-- I3: a moved, cancelled or soft-deleted appointment updates both calls.
CREATE TRIGGER guard_appointments_sync_update
AFTER UPDATE ON public.appointments
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.sync_flags_after_appointment_update();

-- I3: a deleted appointment's call keeps its flags only while another active one remains.
CREATE TRIGGER guard_appointments_sync_delete
AFTER DELETE ON public.appointments
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.sync_flags_after_appointment_delete();

-- Tables Booking Guard created hold no legacy rows worth a staged rollout: validate now. A
-- constraint that existing rows violate stays NOT VALID (a notice says so) for guard db validate.
DO $$
DECLARE
    pending record;
BEGIN
    FOR pending IN
        SELECT t.relname, k.conname
        FROM pg_catalog.pg_constraint AS k
        INNER JOIN pg_catalog.pg_class AS t ON k.conrelid = t.oid
        INNER JOIN guard.baseline_objects AS b ON b.table_name = t.relname AND b.column_name = ''
        WHERE
            t.relnamespace = 'public'::regnamespace
            AND k.conname LIKE 'guard\_%'
            AND NOT k.convalidated
            AND b.created_by_guard
    LOOP
        BEGIN
            EXECUTE format(
                'ALTER TABLE public.%I VALIDATE CONSTRAINT %I', pending.relname, pending.conname
            );
        EXCEPTION WHEN check_violation OR foreign_key_violation THEN
            RAISE NOTICE '% stays NOT VALID: existing rows violate it (run guard db validate)',
                pending.conname;
        END;
    END LOOP;
    IF EXISTS (
        SELECT FROM pg_catalog.pg_constraint AS k
        WHERE k.conname = 'guard_calls_direction_check' AND k.convalidated
    ) THEN
        ALTER TABLE public.calls ALTER COLUMN direction SET NOT NULL;
    END IF;
    PERFORM guard.refresh_rule_stages();
END;
$$;
