-- I1, I3, I4, I5, I6, I7: correct what is safe, queue the rest for a person, guess nothing.
-- In order:
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
--                             grace period: creation_failed (outcome and link status),
--                             booking_failed, requires_manual_processing; queued for review.
--                             Only where its company's I4 stage (guard.effective_rule_setting)
--                             is correct or enforce: at observe the call stays as written and
--                             detection's alert is all (docs/dba.md, "Rollout by company")
--   correct_flags             flags that contradict the appointments are derived again
--   review_orphan_appointment an orphan with no call or several calls to choose from
--   review_cross_tenant       an appointment linked to another company's call, or whose only
--                             candidate call belongs to another company
-- At most reconcile_batch_limit rows are changed per run (the next run continues). Every change
-- to a call or appointment is in guard.correction_audit, under the rule id of the invariant it
-- restores (I1_call_direction, not the check call_without_direction that found the row):
-- a correction has one rule id whichever path made it, so the normaliser's and reconcile's fixes
-- of a direction count together. dry_run counts what would be done and changes nothing.
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
                fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details
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
        WHERE guard.normalised_direction(c.direction) IN ('inbound', 'outbound')
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
            'I1_call_direction', b.company_id, 'call', b.id,
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
            UPDATE public.appointments AS a
            SET call_id = l.call_id, updated_at = guard.to_app_time(now(), a.updated_at, guard.app_time_zone())
            FROM unnest(link_appointments, link_calls) AS l (appointment_id, call_id)
            WHERE a.id = l.appointment_id AND a.call_id IS NULL
            RETURNING a.id, a.company_id, a.call_id
        )

        INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, before, after, reason)
        SELECT
            'I6_voice_appointment_call', k.company_id, 'appointment', k.id,
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
        -- (observed calls are left out before the limit: they never take a later call's turn)
        SELECT p.entity_id FROM guard.check_booked_without_appointment AS p
        CROSS JOIN LATERAL guard.effective_rule_setting('I4_booked_outcome', p.company_id) AS e
        WHERE e.stage <> 'observe' AND NOT (dry_run AND p.entity_id = ANY (link_calls))
        ORDER BY p.entity_id
        LIMIT greatest(budget, 0)
    ) AS v;
    action := 'rollback_phantom_booking';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        WITH before_fix AS (
            SELECT
                c.id, c.company_id, c.session_outcome, c.appointment_made,
                c.appointment_link_status, c.booking_failed, c.requires_manual_processing, c.booking_id
            FROM public.calls AS c
            WHERE c.id = ANY (targets)
            FOR NO KEY UPDATE
        ),

        rolled_back AS (
            UPDATE public.calls AS c
            SET
                session_outcome = 'creation_failed',
                appointment_made = FALSE,
                appointment_link_status = 'creation_failed',
                booking_confirmed = FALSE,
                booking_failed = TRUE,
                booking_failure_reason = coalesce(
                    c.booking_failure_reason, 'no appointment exists after the grace period'
                ),
                requires_manual_processing = TRUE,
                updated_at = guard.to_app_time(now(), c.updated_at, guard.app_time_zone())
            FROM before_fix AS b
            WHERE c.id = b.id
            RETURNING c.id
        )

        INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, before, after, reason)
        SELECT
            'I4_booked_outcome', b.company_id, 'call', b.id,
            jsonb_build_object(
                'session_outcome', b.session_outcome, 'appointment_made', b.appointment_made,
                'appointment_link_status', b.appointment_link_status, 'booking_failed', b.booking_failed,
                'requires_manual_processing', b.requires_manual_processing
            ),
            jsonb_build_object(
                'session_outcome', 'creation_failed', 'appointment_made', FALSE,
                'appointment_link_status', 'creation_failed', 'booking_failed', TRUE, 'requires_manual_processing', TRUE
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
