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
SET jit = off
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
