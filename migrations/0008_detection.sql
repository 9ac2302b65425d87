-- Detection (one view per rule, registered in guard.rules), the alert outbox's NOTIFY wake-up,
-- reconciliation and the review queue.

-- Settings of detection.
INSERT INTO guard.settings (key, value, value_type, description) VALUES
(
    'detection_window_minutes', '60', 'integer',
    'A detection pass looks at rows created this recently (plus every open alert).'
);

-- Rule flags_contradict_appointments (I3): a call with an active appointment whose flags do not
-- say so (not made, not linked, another outcome, or marked failed).
CREATE VIEW guard.check_flags_contradict_appointments WITH (security_invoker = TRUE) AS
SELECT
    'flags_contradict_appointments'::text AS rule_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'high'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object(
        'appointment_made', c.appointment_made,
        'appointment_link_status', c.appointment_link_status,
        'session_outcome', c.session_outcome,
        'booking_failed', c.booking_failed
    ) AS detail
FROM public.calls AS c
WHERE
    EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE a.call_id = c.id AND a.company_id = c.company_id AND a.deleted_at IS NULL AND a.status IS DISTINCT FROM 'cancelled'
    )
    AND NOT coalesce(
        c.appointment_made
        AND c.appointment_link_status = 'linked'
        AND c.session_outcome = 'appointment_booked'
        AND NOT c.booking_failed,
        FALSE
    );

-- Rule booked_without_appointment (I4): a phantom booking. The call claims a booking (made, or
-- outcome appointment_booked) but no active appointment exists, and the claim is older than the
-- grace period. The claim's age is taken from the call's last write (updated_at), because a call
-- may book minutes after it started.
CREATE VIEW guard.check_booked_without_appointment WITH (security_invoker = TRUE) AS
SELECT
    'booked_without_appointment'::text AS rule_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'critical'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object(
        'appointment_made', c.appointment_made,
        'session_outcome', c.session_outcome,
        'booking_id', c.booking_id,
        'claimed_seconds_ago', floor(extract(EPOCH FROM now() - greatest(c.created_at, c.updated_at)))
    ) AS detail
FROM public.calls AS c
WHERE
    (c.appointment_made OR c.session_outcome = 'appointment_booked')
    AND greatest(c.created_at, c.updated_at) < now() - make_interval(
        secs => (
            SELECT (s.value #>> '{}')::integer FROM guard.settings AS s
            WHERE s.key = 'grace_period_seconds'
        )
    )
    AND NOT EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE a.call_id = c.id AND a.company_id = c.company_id AND a.deleted_at IS NULL AND a.status IS DISTINCT FROM 'cancelled'
    );

-- Rule call_without_direction (I1): a call without a valid direction (legacy rows only: new
-- writes are normalised and checked).
CREATE VIEW guard.check_call_without_direction WITH (security_invoker = TRUE) AS
SELECT
    'call_without_direction'::text AS rule_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'medium'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object('direction', c.direction) AS detail
FROM public.calls AS c
WHERE NOT coalesce(c.direction IN ('inbound', 'outbound'), FALSE);

-- Rule orphaned_voice_appointment (I6): an active appointment made by the voice agent
-- (source retell_webhook) that is linked to no call once the grace period is over. The detail
-- counts the calls carrying its booking uid, in its company and in others: what reconcile needs
-- to decide between linking it and queueing it for a person.
CREATE VIEW guard.check_orphaned_voice_appointment WITH (security_invoker = TRUE) AS
SELECT
    'orphaned_voice_appointment'::text AS rule_id,
    a.company_id,
    'appointment'::text AS entity_type,
    a.id AS entity_id,
    NULL::bigint AS call_id,
    'high'::text AS severity,
    a.created_at AS observed_at,
    jsonb_build_object(
        'booking_uid', a.calcom_v2_booking_id,
        'calls_with_uid_same_company', (
            SELECT count(*)
            FROM public.calls AS c
            WHERE c.booking_id = a.calcom_v2_booking_id AND c.company_id = a.company_id
        ),
        'calls_with_uid_other_company', (
            SELECT count(*)
            FROM public.calls AS c
            WHERE c.booking_id = a.calcom_v2_booking_id AND c.company_id <> a.company_id
        )
    ) AS detail
FROM public.appointments AS a
WHERE
    a.source = 'retell_webhook'
    AND a.call_id IS NULL
    AND a.deleted_at IS NULL
    AND a.status IS DISTINCT FROM 'cancelled'
    AND a.created_at < now() - make_interval(
        secs => (
            SELECT (s.value #>> '{}')::integer FROM guard.settings AS s
            WHERE s.key = 'grace_period_seconds'
        )
    );

-- Rule recent_booking_failure (I7): a booking that failed within the failure window
-- (failure_window_minutes). Failures are not wrong data; they must not go unnoticed.
CREATE VIEW guard.check_recent_booking_failure WITH (security_invoker = TRUE) AS
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

-- Rule cross_tenant_link (I5): an appointment linked to a call of another company. The
-- composite foreign key refuses new ones; this finds those an adopted database already had.
CREATE VIEW guard.check_cross_tenant_link WITH (security_invoker = TRUE) AS
SELECT
    'cross_tenant_link'::text AS rule_id,
    a.company_id,
    'appointment'::text AS entity_type,
    a.id AS entity_id,
    a.call_id,
    'critical'::text AS severity,
    a.created_at AS observed_at,
    jsonb_build_object('call_company_id', c.company_id) AS detail
FROM public.appointments AS a
INNER JOIN public.calls AS c ON a.call_id = c.id
WHERE c.company_id <> a.company_id;

-- Rule booking_failure_anomaly (I7): a company whose booking-failure rate in the recent window
-- (failure_window_minutes) is anomaly_factor times its usual rate for that hour of the week,
-- the usual rate being the same window 1 to 4 weeks earlier. Fewer than anomaly_min_failures
-- failures never count. Five index range scans on calls.created_at, whatever the table size.
CREATE VIEW guard.check_booking_failure_anomaly WITH (security_invoker = TRUE) AS
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

-- The detection rules: each is one view under sql/checks returning the offending rows.
INSERT INTO guard.rules (id, invariant, severity, description, remedy, stage, check_view) VALUES
(
    'flags_contradict_appointments', 'I3', 'high',
    'The call has an active appointment but its flags do not say booked.',
    'auto_fix', 'observe', 'check_flags_contradict_appointments'
),
(
    'booked_without_appointment', 'I4', 'critical',
    'The call claims a booking but no active appointment exists after the grace period.',
    'review', 'observe', 'check_booked_without_appointment'
),
(
    'call_without_direction', 'I1', 'medium',
    'The call has no valid direction.',
    'auto_fix', 'observe', 'check_call_without_direction'
),
(
    'orphaned_voice_appointment', 'I6', 'high',
    'A voice-agent appointment is linked to no call.',
    'review', 'observe', 'check_orphaned_voice_appointment'
),
(
    'recent_booking_failure', 'I7', 'high',
    'A booking failed within the failure window.',
    'report', 'observe', 'check_recent_booking_failure'
),
(
    'cross_tenant_link', 'I5', 'critical',
    'An appointment is linked to a call of another company.',
    'review', 'observe', 'check_cross_tenant_link'
),
(
    'booking_failure_anomaly', 'I7', 'critical',
    'The booking-failure rate is far above the usual rate for this hour of the week.',
    'report', 'observe', 'check_booking_failure_anomaly'
);

-- One row a rule view returned: what detection turns into an alert.
CREATE TYPE guard.finding AS (
    rule_id text,
    company_id bigint,
    entity_type text,
    entity_id bigint,
    call_id bigint,
    severity text,
    observed_at timestamptz,
    detail jsonb
);

-- Run every enabled rule that has a check view, over one scope, and keep guard.alerts in step:
--   since     rows observed since then (the windowed pass: detect)
--   only_call the rows of one call (check_call); since is then ignored
-- In the windowed pass each rule also re-checks the entity of every open alert of that rule, so
-- that an alert whose row was fixed is resolved even when the row is older than the window. Alerts are
-- de-duplicated by fingerprint (rule:entity_type:entity_id): a repeat within the throttle window
-- (alert_throttle_seconds) bumps occurrences and last_seen_at; a repeat after a longer silence
-- closes the old alert as superseded and opens a new one. Nothing is deleted or rewritten.
-- Passes are serialised by a transaction advisory lock.
CREATE FUNCTION guard.run_detection(since timestamptz, only_call bigint)
RETURNS TABLE (rule_id text, offending integer, opened integer, repeated integer, resolved integer)
LANGUAGE plpgsql
SET search_path = pg_catalog
-- Each rule's query is a few index scans; starting parallel workers costs more than it saves
-- (measured: 78 -> about 40 ms per pass over 1 000 000 calls).
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    rule record;
    findings guard.finding[];
    throttle interval := make_interval(
        secs => (guard.setting('alert_throttle_seconds') #>> '{}')::integer
    );
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection', 0));
    FOR rule IN
        SELECT r.id, r.check_view, r.severity, r.description
        FROM guard.rules AS r
        WHERE r.enabled AND r.check_view IS NOT NULL
        ORDER BY r.id
    LOOP
        IF only_call IS NULL THEN
            EXECUTE format(
                $query$
                SELECT coalesce(array_agg(ROW(
                    v.rule_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                    v.observed_at, v.detail
                )::guard.finding), '{}')
                FROM (
                    SELECT w.* FROM guard.%1$I AS w WHERE w.observed_at >= $1
                    UNION
                    SELECT k.*
                    FROM guard.%1$I AS k
                    INNER JOIN guard.alerts AS a
                        ON a.entity_type = k.entity_type AND a.entity_id = k.entity_id
                    WHERE a.status = 'open' AND a.rule_id = $2
                ) AS v
                $query$,
                rule.check_view
            ) INTO findings USING since, rule.id;
        ELSE
            EXECUTE format(
                $query$
                SELECT coalesce(array_agg(ROW(
                    v.rule_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                    v.observed_at, v.detail
                )::guard.finding), '{}')
                FROM guard.%1$I AS v
                WHERE v.call_id = $1
                $query$,
                rule.check_view
            ) INTO findings USING only_call;
        END IF;

        rule_id := rule.id;
        offending := cardinality(findings);

        -- A repeat after a silence longer than the throttle window starts a new alert.
        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = a.last_seen_at, resolution = 'superseded'
        FROM unnest(findings) AS f
        WHERE
            a.status = 'open'
            AND a.fingerprint = f.rule_id || ':' || f.entity_type || ':' || f.entity_id
            AND a.last_seen_at < now() - throttle;

        UPDATE guard.alerts AS a
        SET occurrences = a.occurrences + 1, last_seen_at = now()
        FROM unnest(findings) AS f
        WHERE a.status = 'open' AND a.fingerprint = f.rule_id || ':' || f.entity_type || ':' || f.entity_id;
        GET DIAGNOSTICS repeated = ROW_COUNT;

        INSERT INTO guard.alerts (
            fingerprint, rule_id, company_id, entity_type, entity_id, severity, message, details
        )
        SELECT
            f.rule_id || ':' || f.entity_type || ':' || f.entity_id,
            f.rule_id,
            f.company_id,
            f.entity_type,
            f.entity_id,
            f.severity,
            rule.description,
            f.detail || CASE
                WHEN f.call_id IS NOT NULL AND f.entity_type <> 'call'
                    THEN jsonb_build_object('call_id', f.call_id)
                ELSE '{}'
            END
        FROM unnest(findings) AS f
        ON CONFLICT (fingerprint) WHERE status = 'open' DO NOTHING;
        GET DIAGNOSTICS opened = ROW_COUNT;

        -- Open alerts of this rule in this scope whose row no longer offends: fixed.
        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
        WHERE
            a.status = 'open'
            AND a.rule_id = rule.id
            AND (
                only_call IS NULL
                OR (a.entity_type = 'call' AND a.entity_id = only_call)
                OR (
                    a.entity_type = 'appointment'
                    AND a.entity_id IN (
                        SELECT ap.id FROM public.appointments AS ap WHERE ap.call_id = only_call
                    )
                )
            )
            AND a.fingerprint NOT IN (
                SELECT f.rule_id || ':' || f.entity_type || ':' || f.entity_id FROM unnest(findings) AS f
            );
        GET DIAGNOSTICS resolved = ROW_COUNT;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- One detection pass over the recent window (detection_window_minutes): what the detect job
-- runs every 5 minutes and `guard check` runs on demand. Returns a summary per rule.
CREATE FUNCTION guard.detect()
RETURNS TABLE (rule_id text, offending integer, opened integer, repeated integer, resolved integer)
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    SELECT d.rule_id, d.offending, d.opened, d.repeated, d.resolved
    FROM guard.run_detection(
        now() - make_interval(mins => (guard.setting('detection_window_minutes') #>> '{}')::integer),
        NULL
    ) AS d;
$$;

-- Every rule for one call, right now: what application code calls after a booking (the
-- original design's checkCall). Opens, bumps and resolves that call's alerts like detect does.
CREATE FUNCTION guard.check_call(call_id bigint)
RETURNS TABLE (rule_id text, offending integer, opened integer, repeated integer, resolved integer)
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    SELECT d.rule_id, d.offending, d.opened, d.repeated, d.resolved
    FROM guard.run_detection(NULL, check_call.call_id) AS d;
$$;

-- The alerts table is an outbox; this is its wake-up call. One NOTIFY per statement that
-- inserted alerts (none for a statement that inserted nothing), delivered at commit.
CREATE FUNCTION guard.notify_new_alerts()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF EXISTS (SELECT FROM new_alerts) THEN
        PERFORM pg_notify('guard_alerts', 'new');
    END IF;
    RETURN NULL;
END;
$$;

-- Wake the alert dispatcher once per statement that inserted alerts.
CREATE TRIGGER alerts_notify_insert
AFTER INSERT ON guard.alerts
REFERENCING NEW TABLE AS new_alerts
FOR EACH STATEMENT EXECUTE FUNCTION guard.notify_new_alerts();

-- Queue a problem for a person: one open item per call and reason (or, for a problem without a
-- call, per appointment and reason). A duplicate is not an error: the open item stays and its
-- id is returned. Priority follows from the reason (a generated column).
CREATE FUNCTION guard.enqueue_review(
    company_id bigint,
    call_id bigint,
    appointment_id bigint,
    reason text,
    details jsonb DEFAULT '{}'
)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    item_id bigint;
BEGIN
    INSERT INTO guard.review_items (company_id, call_id, appointment_id, reason, details)
    VALUES (
        enqueue_review.company_id, enqueue_review.call_id, enqueue_review.appointment_id,
        enqueue_review.reason, enqueue_review.details
    )
    ON CONFLICT DO NOTHING
    RETURNING id INTO item_id;
    IF item_id IS NULL THEN
        SELECT r.id INTO item_id
        FROM guard.review_items AS r
        WHERE
            r.status IN ('open', 'claimed')
            AND r.reason = enqueue_review.reason
            AND (
                r.call_id = enqueue_review.call_id
                OR (r.call_id IS NULL AND r.appointment_id = enqueue_review.appointment_id)
            );
    END IF;
    RETURN item_id;
END;
$$;

-- Hand the most urgent open items to one reviewer. SKIP LOCKED: two reviewers claiming at the
-- same moment never get the same item and never wait for each other.
CREATE FUNCTION guard.review_claim(actor text, max_items integer DEFAULT 1)
RETURNS SETOF guard.review_items
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    UPDATE guard.review_items AS r
    SET status = 'claimed', claimed_by = review_claim.actor, claimed_at = now()
    WHERE r.id IN (
        SELECT q.id
        FROM guard.review_items AS q
        WHERE q.status = 'open'
        ORDER BY q.priority, q.created_at, q.id
        LIMIT review_claim.max_items
        FOR UPDATE SKIP LOCKED
    )
    RETURNING r.*;
$$;

-- Close a review item: resolved (the problem was dealt with) or dismissed (nothing to do;
-- false_positive says detection was wrong, which feeds the false-positive KPI). Who, when and a
-- note are recorded. Closing an item twice, or one that does not exist, is an error.
CREATE FUNCTION guard.review_close(
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

-- Hourly: resolve open review items whose problem has gone by itself. A booking failure or a
-- failed validation is gone when the call has an active appointment after all; an orphaned or
-- cross-tenant appointment is gone when it is linked to a call of its own company, or is no
-- longer active. Returns the number of items resolved.
CREATE FUNCTION guard.review_sweep()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    swept integer;
BEGIN
    UPDATE guard.review_items AS r
    SET
        status = 'resolved',
        closed_by = 'guard:review_sweep',
        closed_at = now(),
        note = 'the problem is gone: nothing left to do'
    WHERE
        r.status = 'open'
        AND (
            (
                r.reason IN ('calendar_booking_failure', 'validation_failure')
                AND r.call_id IS NOT NULL
                AND EXISTS (
                    SELECT
                    FROM public.appointments AS a
                    WHERE
                        a.call_id = r.call_id
                        AND a.company_id = r.company_id
                        AND a.deleted_at IS NULL
                        AND a.status IS DISTINCT FROM 'cancelled'
                )
            )
            OR (
                r.appointment_id IS NOT NULL
                AND r.reason = 'other'
                AND EXISTS (
                    SELECT
                    FROM public.appointments AS a
                    LEFT JOIN public.calls AS c ON a.call_id = c.id
                    WHERE
                        a.id = r.appointment_id
                        AND (
                            a.deleted_at IS NOT NULL
                            OR a.status = 'cancelled'
                            OR c.company_id = a.company_id
                        )
                )
            )
        );
    GET DIAGNOSTICS swept = ROW_COUNT;
    RETURN swept;
END;
$$;

-- Correct what is safe, queue the rest for a person, guess nothing. In order:
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
-- is in guard.correction_audit. dry_run counts what would be done and changes nothing.
CREATE FUNCTION guard.reconcile(dry_run boolean DEFAULT FALSE)
RETURNS TABLE (action text, affected integer)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    budget integer := (guard.setting('reconcile_batch_limit') #>> '{}')::integer;
    targets bigint[];
    link_appointments bigint[];
    link_calls bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:reconcile', 0));

    -- fill_direction
    SELECT coalesce(array_agg(c.id), '{}') INTO targets
    FROM (
        SELECT v.entity_id AS id FROM guard.check_call_without_direction AS v
        INNER JOIN public.calls AS c ON v.entity_id = c.id
        WHERE coalesce(nullif(lower(btrim(c.direction)), ''), 'inbound') IN ('inbound', 'outbound')
        ORDER BY v.entity_id
        LIMIT budget
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
