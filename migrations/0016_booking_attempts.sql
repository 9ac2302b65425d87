-- The booking journal: guard.booking_attempts, one row per attempt to book a call in the external
-- calendar, committed before the calendar is called (guard.begin_booking_attempt) and closed in
-- the transaction that records the appointment (guard.complete_booking_attempt) or takes the
-- rollback path (guard.fail_booking_attempt). Attempts still calling after
-- booking_attempt_timeout_seconds become review items booking_outcome_unknown (priority 0, before
-- every other reason) and alerts in guard.reconcile, and are reported by detection
-- (check_booking_outcome_unknown). New table, new functions; guard.review_items is rewritten
-- (see below); guard.reconcile and guard.apply_grants are replaced.

SET LOCAL lock_timeout = '5s';

-- guard.review_items: a booking whose outcome is unknown is a review reason of its own, before
-- every other (priority 0). A generated column's expression cannot be altered in PostgreSQL 15:
-- the column is dropped and added again (its index with it), which rewrites the table under an
-- ACCESS EXCLUSIVE lock; the review queue is small.
ALTER TABLE guard.review_items
DROP CONSTRAINT review_items_reason_check,
ADD CONSTRAINT review_items_reason_check CHECK (
    reason IN (
        'validation_failure', 'calendar_booking_failure', 'customer_creation_failure',
        'service_not_found', 'other', 'booking_outcome_unknown'
    )
);

ALTER TABLE guard.review_items DROP COLUMN priority;

ALTER TABLE guard.review_items ADD COLUMN priority smallint GENERATED ALWAYS AS (
    CASE reason
        WHEN 'booking_outcome_unknown' THEN 0
        WHEN 'validation_failure' THEN 1
        WHEN 'calendar_booking_failure' THEN 2
        WHEN 'customer_creation_failure' THEN 3
        WHEN 'service_not_found' THEN 4
        ELSE 5
    END
) STORED;

CREATE INDEX review_items_queue_idx ON guard.review_items (priority, created_at)
WHERE status = 'open';

-- The booking journal: one row per attempt to book a call in the external calendar, committed
-- before the calendar is called, so that a booking the calendar made is never unknown to the
-- database (the process died, the database restarted or failed over between the calendar's
-- answer and the recording of the appointment).
--   state  calling    committed, the calendar is being asked
--          booked     the appointment was recorded in the same transaction that closed it
--          failed     the calendar failed, the booking did not validate, or the calendar had no
--                     booking for the key (the call was rolled back and queued for review)
--          unknown    still calling after booking_attempt_timeout_seconds: queued for review as
--                     booking_outcome_unknown (guard.reconcile)
--          recovered  an unknown attempt the calendar had booked: the appointment was recorded
-- Ready to be partitioned by month on created_at (PARTITION BY RANGE (created_at)): the primary
-- key contains created_at and nothing references the table or is referenced by it (no foreign
-- keys, like every guard table). Two unique indexes would then hold per partition only; see
-- docs/dba.md for what keeps them true across partitions.
CREATE TABLE guard.booking_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY,
    company_id bigint NOT NULL,
    call_id bigint NOT NULL,
    service_id bigint NOT NULL,
    idempotency_key text NOT NULL,
    state text NOT NULL DEFAULT 'calling' CHECK (
        state IN ('calling', 'booked', 'failed', 'unknown', 'recovered')
    ),
    started_by text NOT NULL DEFAULT session_user,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    booking_uid text,
    appointment_id bigint,
    failure_reason text,
    CONSTRAINT booking_attempts_pkey PRIMARY KEY (id, created_at),
    CONSTRAINT booking_attempts_idempotency_key_key UNIQUE (idempotency_key),
    CONSTRAINT booking_attempts_settled_has_time CHECK (
        (state IN ('calling', 'unknown')) = (finished_at IS NULL)
    ),
    CONSTRAINT booking_attempts_booked_has_appointment CHECK (
        (state IN ('booked', 'recovered')) <= (appointment_id IS NOT NULL AND booking_uid IS NOT NULL)
    )
);

-- At most one unsettled attempt per call: a second booking of a call whose first attempt is in
-- flight, or whose outcome nobody knows yet, would make the calendar book twice.
CREATE UNIQUE INDEX booking_attempts_one_unsettled_per_call ON guard.booking_attempts (call_id)
WHERE state IN ('calling', 'unknown');

-- The reconcile job and detection look for attempts past their timeout.
CREATE INDEX booking_attempts_unsettled_idx ON guard.booking_attempts (created_at)
WHERE state IN ('calling', 'unknown');

CREATE INDEX booking_attempts_call_idx ON guard.booking_attempts (call_id);

-- Settings of the booking journal.
INSERT INTO guard.settings (key, value, value_type, description) VALUES
(
    'booking_attempt_timeout_seconds', '120', 'integer',
    'A booking attempt still calling the calendar after this long has an unknown outcome: '
    || 'reconcile queues it for review (booking_outcome_unknown).'
);

-- Row-level security by company on guard.booking_attempts, as on guard.alerts: every role sees
-- only the rows of its session's tenant (guard.current_company(); unset: nothing). FORCE, so
-- that the owner obeys it too; the owner's functions and jobs pass by
-- guard.booking_attempts.owner_maintenance. The application writes the journal only through
-- the SECURITY DEFINER booking-attempt functions.
ALTER TABLE guard.booking_attempts ENABLE ROW LEVEL SECURITY;

ALTER TABLE guard.booking_attempts FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON guard.booking_attempts
FOR ALL
TO public
USING (company_id = guard.current_company())
WITH CHECK (company_id = guard.current_company());

-- The owner role (the booking-attempt functions, reconciliation, detection) maintains every
-- tenant's rows of guard.booking_attempts. The role name is configurable (guard.role_names).
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY owner_maintenance ON guard.booking_attempts FOR ALL TO %I USING (TRUE) WITH CHECK (TRUE)',
        guard.role('owner')
    );
END;
$$;

-- Rule booking_outcome_unknown: a booking attempt that called the calendar and never finished.
-- Still calling after booking_attempt_timeout_seconds (the process died, the database went away
-- between the calendar's answer and the recording), or already marked unknown by reconcile and
-- not yet settled. The calendar may hold a booking the database does not know; the idempotency
-- key lets a person (or recover_attempts) ask the calendar.
CREATE VIEW guard.check_booking_outcome_unknown WITH (security_invoker = TRUE) AS
SELECT
    'booking_outcome_unknown'::text AS rule_id,
    b.company_id,
    'booking_attempt'::text AS entity_type,
    b.id AS entity_id,
    b.call_id,
    'critical'::text AS severity,
    b.created_at AS observed_at,
    jsonb_build_object(
        'idempotency_key', b.idempotency_key,
        'service_id', b.service_id,
        'state', b.state,
        'started_by', b.started_by,
        'calling_seconds', floor(extract(EPOCH FROM now() - b.created_at))
    ) AS detail
FROM guard.booking_attempts AS b
WHERE
    b.state = 'unknown'
    OR (
        b.state = 'calling'
        AND b.created_at < now() - make_interval(
            secs => (
                SELECT (s.value #>> '{}')::integer FROM guard.settings AS s
                WHERE s.key = 'booking_attempt_timeout_seconds'
            )
        )
    );

-- Detection of the booking journal: attempts whose outcome nobody knows.
INSERT INTO guard.rules (id, invariant, severity, description, remedy, stage, check_view) VALUES
(
    'booking_outcome_unknown', 'I7', 'critical',
    'A booking attempt called the calendar and never finished (past booking_attempt_timeout_seconds): '
    || 'the calendar may hold a booking the database does not know.',
    'review', 'observe', 'check_booking_outcome_unknown'
);

-- Start a booking attempt for a call, before the calendar is called; the caller commits it
-- first (durably: synchronous_commit on) and only then calls the calendar with the returned
-- idempotency key. outcome:
--   started         a new attempt in state calling; call the calendar with idempotency_key
--   already_booked  the call has an active appointment (appointment_id, booking_uid): a booking
--                   that succeeded is returned, the calendar is not called again
--   in_flight       another attempt for the call is calling and not timed out: refused
--   outcome_unknown an earlier attempt timed out and is not settled (it is, or will be, in review
--                   as booking_outcome_unknown): refused until recover_attempts or a person
--                   settles it, because a new key would let the calendar book the call twice
-- The call row is locked (FOR NO KEY UPDATE) so that two attempts for one call serialise here;
-- the unique index booking_attempts_one_unsettled_per_call backs it up.
-- SECURITY DEFINER: the application may not write the journal itself; a session with a tenant
-- set may only book that tenant's calls.
CREATE FUNCTION guard.begin_booking_attempt(call_id bigint, service_id bigint)
RETURNS TABLE (
    outcome text, attempt_id bigint, idempotency_key text, appointment_id bigint, booking_uid text
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    the_call record;
    earlier record;
    timeout interval := make_interval(
        secs => (guard.setting('booking_attempt_timeout_seconds') #>> '{}')::integer
    );
BEGIN
    IF begin_booking_attempt.call_id IS NULL OR begin_booking_attempt.service_id IS NULL THEN
        RAISE EXCEPTION 'begin_booking_attempt needs a call and a service'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.id, c.company_id INTO the_call
    FROM public.calls AS c WHERE c.id = begin_booking_attempt.call_id
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'call % does not exist', begin_booking_attempt.call_id
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM guard.assert_tenant(the_call.company_id);

    SELECT 'already_booked', a.id, a.calcom_v2_booking_id
    INTO outcome, appointment_id, booking_uid
    FROM public.appointments AS a
    WHERE
        a.call_id = the_call.id
        AND a.company_id = the_call.company_id
        AND a.deleted_at IS NULL
        AND a.status IS DISTINCT FROM 'cancelled'
    ORDER BY a.id
    LIMIT 1;
    IF FOUND THEN
        RETURN NEXT;
        RETURN;
    END IF;

    SELECT b.id, b.idempotency_key, b.state, b.created_at INTO earlier
    FROM guard.booking_attempts AS b
    WHERE b.call_id = the_call.id AND b.state IN ('calling', 'unknown');
    IF FOUND THEN
        outcome := CASE
            WHEN earlier.state = 'calling' AND earlier.created_at >= now() - timeout THEN 'in_flight'
            ELSE 'outcome_unknown'
        END;
        attempt_id := earlier.id;
        idempotency_key := earlier.idempotency_key;
        RETURN NEXT;
        RETURN;
    END IF;

    INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key)
    VALUES (
        the_call.company_id, the_call.id, begin_booking_attempt.service_id, gen_random_uuid()::text
    )
    RETURNING 'started', id, booking_attempts.idempotency_key
    INTO outcome, attempt_id, idempotency_key;
    RETURN NEXT;
END;
$$;

-- An attempt whose outcome was unknown is settled (recorded, or found not booked): its
-- booking_outcome_unknown review item is resolved and its alert closed as fixed, with how it
-- was settled as the note. Called by complete_booking_attempt and fail_booking_attempt; not
-- granted to anyone (it runs inside those SECURITY DEFINER functions as the owner).
CREATE FUNCTION guard.settle_unknown_booking_attempt(attempt_id bigint, call_id bigint, note text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE guard.review_items AS r
    SET status = 'resolved', closed_by = 'booking-guard', closed_at = now(), note = settle_unknown_booking_attempt.note
    WHERE
        r.call_id = settle_unknown_booking_attempt.call_id
        AND r.reason = 'booking_outcome_unknown'
        AND r.status IN ('open', 'claimed');
    UPDATE guard.alerts AS a
    SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
    WHERE
        a.status = 'open'
        AND a.fingerprint = 'booking_outcome_unknown:booking_attempt:' || settle_unknown_booking_attempt.attempt_id;
END;
$$;

-- Close a booking attempt as booked, in the transaction that recorded its appointment (commit
-- both or neither). The appointment must be an active appointment of the attempt's call and
-- company carrying booking_uid. An attempt that was still calling becomes booked; one whose
-- outcome was unknown (or that is past its timeout) becomes recovered, and its review item and
-- alert are closed. An attempt that was already settled is an error (SQLSTATE 55000): its call
-- may have been rolled back and reviewed meanwhile, and the caller must treat this booking as a
-- failure to review, not as a success.
-- SECURITY DEFINER: the application may not write the journal itself; a session with a tenant
-- set may only close that tenant's attempts.
CREATE FUNCTION guard.complete_booking_attempt(
    idempotency_key text, appointment_id bigint, booking_uid text
)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    attempt record;
    new_state text;
BEGIN
    IF complete_booking_attempt.idempotency_key IS NULL OR complete_booking_attempt.appointment_id IS NULL
        OR complete_booking_attempt.booking_uid IS NULL THEN
        RAISE EXCEPTION 'complete_booking_attempt needs a key, an appointment and a booking uid'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT b.id, b.company_id, b.call_id, b.state, b.created_at INTO attempt
    FROM guard.booking_attempts AS b
    WHERE b.idempotency_key = complete_booking_attempt.idempotency_key
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no booking attempt with this idempotency key'
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM guard.assert_tenant(attempt.company_id);
    IF attempt.state NOT IN ('calling', 'unknown') THEN
        RAISE EXCEPTION 'booking attempt % is already settled (%)', attempt.id, attempt.state
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NOT EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE
            a.id = complete_booking_attempt.appointment_id
            AND a.call_id = attempt.call_id
            AND a.company_id = attempt.company_id
            AND a.calcom_v2_booking_id = complete_booking_attempt.booking_uid
            AND a.deleted_at IS NULL
            AND a.status IS DISTINCT FROM 'cancelled'
    ) THEN
        RAISE EXCEPTION 'appointment % is not an active appointment of call % with booking uid %',
            complete_booking_attempt.appointment_id, attempt.call_id, complete_booking_attempt.booking_uid
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    new_state := CASE
        WHEN attempt.state = 'unknown' OR attempt.created_at < now() - make_interval(
            secs => (guard.setting('booking_attempt_timeout_seconds') #>> '{}')::integer
        ) THEN 'recovered'
        ELSE 'booked'
    END;
    UPDATE guard.booking_attempts AS b
    SET
        state = new_state,
        finished_at = now(),
        appointment_id = complete_booking_attempt.appointment_id,
        booking_uid = complete_booking_attempt.booking_uid
    WHERE b.id = attempt.id AND b.created_at = attempt.created_at;
    IF attempt.state = 'unknown' THEN
        PERFORM guard.settle_unknown_booking_attempt(
            attempt.id, attempt.call_id,
            'the calendar booked it; recorded as appointment ' || complete_booking_attempt.appointment_id
        );
    END IF;
    RETURN new_state;
END;
$$;

-- Close a booking attempt as failed and take the rollback path, in one transaction: the call
-- is rolled back and queued for review by guard.rollback_booking (reason: the review reason;
-- context: what a reviewer needs), with the idempotency key added to the context. An attempt
-- whose outcome was unknown has its booking_outcome_unknown review item and alert closed (the
-- outcome is known now: no booking). An attempt that was settled already keeps its state (a
-- late failure of a recovered attempt must not unbook it); the rollback path runs anyway, so
-- the failure is never silent. Returns the review item's id.
-- SECURITY DEFINER: the application may not write the journal, alerts or review items itself;
-- a session with a tenant set may only fail that tenant's attempts.
CREATE FUNCTION guard.fail_booking_attempt(
    idempotency_key text, reason text, context jsonb DEFAULT '{}'
)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    attempt record;
    failure jsonb;
BEGIN
    IF fail_booking_attempt.idempotency_key IS NULL OR fail_booking_attempt.reason IS NULL THEN
        RAISE EXCEPTION 'fail_booking_attempt needs a key and a reason'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF fail_booking_attempt.context IS NOT NULL AND jsonb_typeof(fail_booking_attempt.context) <> 'object' THEN
        RAISE EXCEPTION 'fail_booking_attempt: context must be a JSON object, not %',
            jsonb_typeof(fail_booking_attempt.context)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT b.id, b.company_id, b.call_id, b.state, b.created_at INTO attempt
    FROM guard.booking_attempts AS b
    WHERE b.idempotency_key = fail_booking_attempt.idempotency_key
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no booking attempt with this idempotency key'
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM guard.assert_tenant(attempt.company_id);
    failure := coalesce(fail_booking_attempt.context, '{}')
        || jsonb_build_object('idempotency_key', fail_booking_attempt.idempotency_key);

    IF attempt.state IN ('calling', 'unknown') THEN
        UPDATE guard.booking_attempts AS b
        SET
            state = 'failed',
            finished_at = now(),
            failure_reason = fail_booking_attempt.reason,
            booking_uid = fail_booking_attempt.context ->> 'booking_uid'
        WHERE b.id = attempt.id AND b.created_at = attempt.created_at;
    END IF;
    IF attempt.state = 'unknown' THEN
        PERFORM guard.settle_unknown_booking_attempt(
            attempt.id, attempt.call_id, 'settled as failed: ' || fail_booking_attempt.reason
        );
    END IF;
    RETURN guard.rollback_booking(attempt.call_id, fail_booking_attempt.reason, failure);
END;
$$;

-- The booking attempts whose outcome nobody knows, oldest first: still calling past
-- booking_attempt_timeout_seconds (or past older_than_seconds, when given), or marked unknown by
-- reconcile. What recover_attempts asks the application's calendar about. A session with a
-- tenant set sees only that tenant's attempts.
-- SECURITY DEFINER: the application may not read the journal itself.
CREATE FUNCTION guard.unsettled_booking_attempts(
    max_attempts integer DEFAULT 100, older_than_seconds integer DEFAULT NULL
)
RETURNS TABLE (
    attempt_id bigint, idempotency_key text, company_id bigint, call_id bigint, service_id bigint,
    state text, created_at timestamptz
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    timeout interval;
BEGIN
    IF unsettled_booking_attempts.max_attempts IS NULL OR unsettled_booking_attempts.max_attempts < 0 THEN
        RAISE EXCEPTION 'unsettled_booking_attempts needs max_attempts >= 0'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    timeout := make_interval(secs => coalesce(
        unsettled_booking_attempts.older_than_seconds,
        (guard.setting('booking_attempt_timeout_seconds') #>> '{}')::integer
    ));
    RETURN QUERY
    SELECT b.id, b.idempotency_key, b.company_id, b.call_id, b.service_id, b.state, b.created_at
    FROM guard.booking_attempts AS b
    WHERE
        (b.state = 'unknown' OR (b.state = 'calling' AND b.created_at < now() - timeout))
        AND (guard.current_company() IS NULL OR b.company_id = guard.current_company())
    ORDER BY b.created_at, b.id
    LIMIT unsettled_booking_attempts.max_attempts;
END;
$$;

-- Correct what is safe, queue the rest for a person, guess nothing. In order:
--   booking_outcome_unknown   booking attempts still calling past booking_attempt_timeout_seconds
--                             become unknown: a review item booking_outcome_unknown (the highest
--                             priority) with the idempotency key, call and service, and an alert
--   close_reviewed_attempt    an unknown attempt whose review item a person closed (they settled
--                             it by hand) is closed as failed, naming who closed the item; this
--                             lets the call be booked again
--   fill_direction            calls without a direction (the I1 normaliser fills inbound)
--   link_orphan_appointment   a voice-agent appointment without a call is linked to THE call of
--                             its company carrying its booking uid, when exactly one exists and
--                             no other company has one (the triggers then book the call)
--   rollback_phantom_booking  a call still claiming a booking without an appointment after the
--                             grace period: creation_failed, booking_failed,
--                             requires_manual_processing; queued for review
--   correct_flags             flags that contradict the appointments are derived again
--   review_orphan_appointment an orphan with no call or several calls to choose from
--   review_cross_tenant       an appointment linked to another company's call, or whose only
--                             candidate call belongs to another company
-- At most reconcile_batch_limit rows are changed per run (the next run continues). Every change
-- to a call or appointment is in guard.correction_audit. dry_run counts what would be done and
-- changes nothing.
CREATE OR REPLACE FUNCTION guard.reconcile(dry_run boolean DEFAULT FALSE)
RETURNS TABLE (action text, affected integer)
LANGUAGE plpgsql
SET search_path = pg_catalog
-- Like refresh_call_flags: JIT compilation of its large statements costs more than it saves.
SET jit = off
AS $$
DECLARE
    budget integer := (guard.setting('reconcile_batch_limit') #>> '{}')::integer;
    targets bigint[];
    link_appointments bigint[];
    link_calls bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:reconcile', 0));

    -- booking_outcome_unknown. The UPDATE re-checks the state under the row lock: an attempt
    -- its booking process closes meanwhile is left alone.
    SELECT coalesce(array_agg(b.id), '{}') INTO targets
    FROM (
        SELECT a.id
        FROM guard.booking_attempts AS a
        WHERE
            a.state = 'calling'
            AND a.created_at < now() - make_interval(
                secs => (guard.setting('booking_attempt_timeout_seconds') #>> '{}')::integer
            )
        ORDER BY a.created_at, a.id
        LIMIT budget
    ) AS b;
    action := 'booking_outcome_unknown';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        WITH marked AS (
            UPDATE guard.booking_attempts AS b SET state = 'unknown'
            WHERE b.id = ANY (targets) AND b.state = 'calling'
            RETURNING
                b.id, b.company_id, b.call_id, b.service_id, b.idempotency_key, b.started_by,
                b.created_at
        ),

        -- (a data-modifying WITH runs to completion whether or not it is read)
        alerted AS (
            INSERT INTO guard.alerts (
                fingerprint, rule_id, company_id, entity_type, entity_id, severity, message, details
            )
            SELECT
                'booking_outcome_unknown:booking_attempt:' || m.id,
                'booking_outcome_unknown',
                m.company_id,
                'booking_attempt',
                m.id,
                'critical',
                'a booking attempt never finished: the calendar may hold a booking the database does not know',
                jsonb_build_object(
                    'idempotency_key', m.idempotency_key, 'call_id', m.call_id,
                    'service_id', m.service_id, 'started_at', m.created_at
                )
            FROM marked AS m
            ON CONFLICT (fingerprint) WHERE status = 'open' DO UPDATE
                SET occurrences = guard.alerts.occurrences + 1, last_seen_at = now()
        )

        SELECT count(guard.enqueue_review(
            m.company_id, m.call_id, NULL, 'booking_outcome_unknown',
            jsonb_build_object(
                'idempotency_key', m.idempotency_key, 'attempt_id', m.id,
                'service_id', m.service_id, 'started_at', m.created_at,
                'started_by', m.started_by
            )
        ))::integer INTO affected
        FROM marked AS m;
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- close_reviewed_attempt
    SELECT coalesce(array_agg(b.id), '{}') INTO targets
    FROM (
        SELECT a.id
        FROM guard.booking_attempts AS a
        WHERE
            a.state = 'unknown'
            AND NOT EXISTS (
                SELECT FROM guard.review_items AS r
                WHERE
                    r.call_id = a.call_id
                    AND r.reason = 'booking_outcome_unknown'
                    AND r.status IN ('open', 'claimed')
            )
        ORDER BY a.created_at, a.id
        LIMIT greatest(budget, 0)
    ) AS b;
    action := 'close_reviewed_attempt';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        WITH closed AS (
            UPDATE guard.booking_attempts AS b
            SET
                state = 'failed',
                finished_at = now(),
                failure_reason = 'settled in review by ' || coalesce((
                    SELECT r.closed_by FROM guard.review_items AS r
                    WHERE r.call_id = b.call_id AND r.reason = 'booking_outcome_unknown'
                    ORDER BY r.closed_at DESC NULLS LAST, r.id DESC
                    LIMIT 1
                ), 'nobody (no review item)')
            WHERE b.id = ANY (targets) AND b.state = 'unknown'
            RETURNING b.id
        )

        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = now(), resolution = 'manual'
        FROM closed AS c
        WHERE a.status = 'open' AND a.fingerprint = 'booking_outcome_unknown:booking_attempt:' || c.id;
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- fill_direction
    SELECT coalesce(array_agg(c.id), '{}') INTO targets
    FROM (
        SELECT v.entity_id AS id FROM guard.check_call_without_direction AS v
        INNER JOIN public.calls AS c ON v.entity_id = c.id
        WHERE coalesce(nullif(lower(btrim(c.direction)), ''), 'inbound') IN ('inbound', 'outbound')
        ORDER BY v.entity_id
        LIMIT greatest(budget, 0)
    ) AS c;
    action := 'fill_direction';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        WITH before_fix AS (
            SELECT c.id, c.company_id, c.direction FROM public.calls AS c WHERE c.id = ANY (targets)
        ),

        fixed AS (
            UPDATE public.calls AS c SET direction = c.direction
            FROM before_fix AS b WHERE c.id = b.id
            RETURNING c.id, c.direction
        )

        INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, before, after, reason)
        SELECT
            'call_without_direction', b.company_id, 'call', b.id,
            jsonb_build_object('direction', b.direction), jsonb_build_object('direction', f.direction),
            'reconcile: missing direction'
        FROM before_fix AS b INNER JOIN fixed AS f ON b.id = f.id;
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- link_orphan_appointment: exactly one candidate call, in the same company, none elsewhere.
    SELECT coalesce(array_agg(l.appointment_id), '{}'), coalesce(array_agg(l.call_id), '{}')
    INTO link_appointments, link_calls
    FROM (
        SELECT a.id AS appointment_id, min(c.id) AS call_id
        FROM guard.check_orphaned_voice_appointment AS v
        INNER JOIN public.appointments AS a ON v.entity_id = a.id
        INNER JOIN public.calls AS c
            ON c.booking_id = a.calcom_v2_booking_id AND c.company_id = a.company_id
        WHERE (v.detail ->> 'calls_with_uid_other_company')::integer = 0
        GROUP BY a.id
        HAVING count(*) = 1
        ORDER BY a.id
        LIMIT greatest(budget, 0)
    ) AS l;
    action := 'link_orphan_appointment';
    affected := cardinality(link_appointments);
    IF NOT dry_run AND affected > 0 THEN
        WITH linked AS (
            UPDATE public.appointments AS a SET call_id = l.call_id, updated_at = now()
            FROM unnest(link_appointments, link_calls) AS l (appointment_id, call_id)
            WHERE a.id = l.appointment_id AND a.call_id IS NULL
            RETURNING a.id, a.company_id, a.call_id
        )

        INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, before, after, reason)
        SELECT
            'orphaned_voice_appointment', k.company_id, 'appointment', k.id,
            jsonb_build_object('call_id', NULL), jsonb_build_object('call_id', k.call_id),
            'reconcile: the only call of the company with the same booking uid'
        FROM linked AS k;
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- rollback_phantom_booking (after the links above, which recover what can be recovered)
    SELECT coalesce(array_agg(v.entity_id), '{}') INTO targets
    FROM (
        -- (a dry run has not linked anything: leave out the calls a link would recover)
        SELECT p.entity_id FROM guard.check_booked_without_appointment AS p
        WHERE NOT (dry_run AND p.entity_id = ANY (link_calls))
        ORDER BY p.entity_id
        LIMIT greatest(budget, 0)
    ) AS v;
    action := 'rollback_phantom_booking';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        WITH before_fix AS (
            SELECT
                c.id, c.company_id, c.session_outcome, c.appointment_made, c.booking_failed,
                c.requires_manual_processing, c.booking_id
            FROM public.calls AS c
            WHERE c.id = ANY (targets)
            FOR NO KEY UPDATE
        ),

        rolled_back AS (
            UPDATE public.calls AS c
            SET
                session_outcome = 'creation_failed',
                appointment_made = FALSE,
                appointment_link_status = CASE WHEN c.appointment_link_status IS NULL THEN NULL ELSE 'unlinked' END,
                booking_confirmed = FALSE,
                booking_failed = TRUE,
                booking_failure_reason = coalesce(
                    c.booking_failure_reason, 'no appointment exists after the grace period'
                ),
                requires_manual_processing = TRUE,
                updated_at = now()
            FROM before_fix AS b
            WHERE c.id = b.id
            RETURNING c.id
        )

        INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, before, after, reason)
        SELECT
            'booked_without_appointment', b.company_id, 'call', b.id,
            jsonb_build_object(
                'session_outcome', b.session_outcome, 'appointment_made', b.appointment_made,
                'booking_failed', b.booking_failed,
                'requires_manual_processing', b.requires_manual_processing
            ),
            jsonb_build_object(
                'session_outcome', 'creation_failed', 'appointment_made', FALSE,
                'booking_failed', TRUE, 'requires_manual_processing', TRUE
            ),
            'reconcile: booked without an appointment after the grace period'
        FROM before_fix AS b INNER JOIN rolled_back AS r ON b.id = r.id;
        PERFORM guard.enqueue_review(
            c.company_id, c.id, NULL, 'calendar_booking_failure',
            jsonb_build_object('booking_id', c.booking_id, 'found_by', 'booked_without_appointment')
        )
        FROM public.calls AS c WHERE c.id = ANY (targets);
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- correct_flags
    SELECT coalesce(array_agg(v.entity_id), '{}') INTO targets
    FROM (
        SELECT f.entity_id FROM guard.check_flags_contradict_appointments AS f
        ORDER BY f.entity_id LIMIT greatest(budget, 0)
    ) AS v;
    action := 'correct_flags';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        affected := guard.refresh_call_flags(
            targets, audit_reason => 'reconcile: flags contradicted the appointments'
        );
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- review_orphan_appointment: none or several calls to choose from (never guessed).
    SELECT coalesce(array_agg(v.entity_id), '{}') INTO targets
    FROM guard.check_orphaned_voice_appointment AS v
    WHERE
        (v.detail ->> 'calls_with_uid_other_company')::integer = 0
        AND (v.detail ->> 'calls_with_uid_same_company')::integer <> 1
        AND NOT EXISTS (
            SELECT FROM guard.review_items AS r
            WHERE r.appointment_id = v.entity_id AND r.status IN ('open', 'claimed')
        );
    action := 'review_orphan_appointment';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        PERFORM guard.enqueue_review(
            v.company_id, NULL, v.entity_id, 'other',
            v.detail || jsonb_build_object('problem', 'orphaned_voice_appointment')
        )
        FROM guard.check_orphaned_voice_appointment AS v
        WHERE v.entity_id = ANY (targets);
    END IF;
    RETURN NEXT;

    -- review_cross_tenant: linked across companies, or the only candidate is in another
    -- company. Never corrected: which company is right is a person's call.
    SELECT coalesce(array_agg(t.entity_id), '{}') INTO targets
    FROM (
        SELECT x.entity_id FROM guard.check_cross_tenant_link AS x
        UNION
        SELECT o.entity_id FROM guard.check_orphaned_voice_appointment AS o
        WHERE (o.detail ->> 'calls_with_uid_other_company')::integer > 0
    ) AS t
    WHERE NOT EXISTS (
        SELECT FROM guard.review_items AS r
        WHERE r.appointment_id = t.entity_id AND r.status IN ('open', 'claimed')
    );
    action := 'review_cross_tenant';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        PERFORM guard.enqueue_review(
            a.company_id, NULL, a.id, 'other',
            jsonb_build_object(
                'problem', CASE WHEN a.call_id IS NULL THEN 'cross_tenant_candidate' ELSE 'cross_tenant_link' END,
                'booking_uid', a.calcom_v2_booking_id,
                'linked_call_id', a.call_id
            )
        )
        FROM public.appointments AS a
        WHERE a.id = ANY (targets);
    END IF;
    RETURN NEXT;
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
            'guard.refresh_call_flags(bigint[], bigint[], text, boolean)',
            -- the booking journal (guard.booking_attempts), written only through these
            'guard.begin_booking_attempt(bigint, bigint)',
            'guard.complete_booking_attempt(text, bigint, text)',
            'guard.fail_booking_attempt(text, text, jsonb)',
            'guard.unsettled_booking_attempts(integer, integer)'
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
                        'jobs', 'job_runs',
                        -- read by the security_invoker view check_booking_outcome_unknown
                        'booking_attempts'
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
