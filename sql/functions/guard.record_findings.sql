-- Keep guard.alerts in step with what one check found in one scope (guard.run_detection,
-- guard.detect_between, guard.sweep_checks, guard.check_call): a finding whose open alert was seen
-- within the silence an alert keeps (guard.alert_silence) is a repeat; one whose open alert has
-- been silent longer closes that alert as superseded and opens a new one; one without an open
-- alert opens one. Resolving what was not found is the caller's: only it knows the scope. observed
-- (false for guard check --all's history) says whether a new alert keeps its row's observed_at
-- and written_at (its last write), from which guard.kpis measures detection latency.
-- A repeat is written (occurrences + 1, last_seen_at = now()) only when the alert's last_seen_at
-- is due for a refresh: older than 30 to 60 minutes, 5 minutes times (6 + id % 7), so that alerts
-- opened together come due at different passes (docs/jobs.md, "What a pass writes"). Writing
-- every repeat rewrote every open alert at every pass: 150,000 row versions a pass after a burst.
-- An alert is silent when neither its last_seen_at nor the start of its check's previous windowed
-- pass that ran through (guard.detection_runs) is within the silence: such a pass found or probed
-- the open alerts of its check that were due (every one up to detection_probe_every_alerts), and
-- resolved those it did not find.
-- One statement finds each finding's open alert once, and writes only the due and the silent; the
-- INSERT gets only the findings left without an open alert (a statement per outcome looked each
-- finding up three times on the open-fingerprint index, a third of a pass over 70,000 open alerts).
-- ON CONFLICT DO NOTHING stays: guard.check_call does not wait for a windowed pass, and may have
-- opened the same alert since this statement read the index.
CREATE OR REPLACE FUNCTION guard.record_findings(
    findings guard.finding[],
    message text,
    silence interval,
    observed boolean,
    OUT opened integer,
    OUT repeated integer,
    OUT superseded integer
)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    -- an open alert last seen before this has been silent too long
    cutoff timestamptz := now() - silence;
    kept text[];
    -- the start of the check's previous windowed pass that ran through
    seen timestamptz;
BEGIN
    -- Most checks of a call's pass find nothing: no statement to run.
    IF cardinality(findings) = 0 THEN
        opened := 0;
        repeated := 0;
        superseded := 0;
        RETURN;
    END IF;
    SELECT r.pass_started_at INTO seen
    FROM guard.detection_runs AS r
    WHERE r.check_id = (findings[1]).check_id
    ORDER BY r.pass_started_at DESC
    LIMIT 1;
    -- A pass of the check that ran through within the silence saw every open alert of the check:
    -- none is silent. Otherwise an alert is silent when its own last sighting is too old.
    IF seen >= cutoff THEN
        cutoff := '-infinity';
    END IF;
    -- Each alert is judged once (found), as it was when the statement began, and only the silent
    -- and the due are written; every SET expression reads the alert as it was. The UPDATE, a
    -- data-modifying WITH, runs to completion though the query below does not read it.
    -- Both reach each alert by its key, whatever the statistics say. While a pass opens
    -- thousands of alerts, a check_call's planner still believes the open-alert indexes empty (as
    -- the last ANALYZE found them): each finding is probed on its own (OFFSET 0) on all three
    -- columns of alerts_open_by_check_idx, and the UPDATE reads by id (IS NOT DISTINCT FROM keeps
    -- the partial indexes out of its plan; status is NOT NULL, so it means =). Joined freely, both
    -- read every open alert of the check, the pass's uncommitted ones too: 2-13 ms a check in a
    -- check_call during such a pass (docs/measurements.md).
    WITH found AS MATERIALIZED (
        SELECT
            a.id,
            a.fingerprint,
            a.last_seen_at < cutoff AS silent,
            a.last_seen_at < now() - interval '5 minutes' * (6 + a.id % 7) AS due
        FROM unnest(findings) AS f
        INNER JOIN LATERAL (
            SELECT a.id, a.fingerprint, a.last_seen_at
            FROM guard.alerts AS a
            WHERE
                a.status = 'open'
                AND a.fingerprint = f.check_id || ':' || f.entity_type || ':' || f.entity_id
                AND a.check_id = f.check_id
                AND a.entity_type = f.entity_type
                AND a.entity_id = f.entity_id
            OFFSET 0
        ) AS a ON TRUE
    ),

    touched AS (
        UPDATE guard.alerts AS a
        SET
            status = CASE WHEN a.last_seen_at < cutoff THEN 'resolved' ELSE 'open' END,
            resolved_at = CASE WHEN a.last_seen_at < cutoff THEN a.last_seen_at END,
            resolution = CASE WHEN a.last_seen_at < cutoff THEN 'superseded' END,
            occurrences = CASE
                WHEN a.last_seen_at < cutoff THEN a.occurrences ELSE a.occurrences + 1
            END,
            last_seen_at = CASE WHEN a.last_seen_at < cutoff THEN a.last_seen_at ELSE now() END
        FROM found AS o
        WHERE a.id = o.id AND a.status IS NOT DISTINCT FROM 'open' AND (o.silent OR o.due)
    )

    SELECT
        coalesce(array_agg(DISTINCT o.fingerprint) FILTER (WHERE NOT o.silent), '{}'),
        count(DISTINCT o.id) FILTER (WHERE NOT o.silent),
        count(DISTINCT o.id) FILTER (WHERE o.silent)
    INTO kept, repeated, superseded
    FROM found AS o;

    INSERT INTO guard.alerts (
        fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details,
        observed_at, written_at
    )
    SELECT
        f.check_id || ':' || f.entity_type || ':' || f.entity_id,
        f.check_id,
        f.company_id,
        f.entity_type,
        f.entity_id,
        f.severity,
        message,
        f.detail || CASE
            WHEN f.call_id IS NOT NULL AND f.entity_type <> 'call'
                THEN jsonb_build_object('call_id', f.call_id)
            ELSE '{}'
        END,
        CASE WHEN observed THEN f.observed_at END,
        -- the detection latency of the alert counts from the row's last write (guard.kpis): a
        -- call that claims a booking minutes after it began is bad from that write on, and its
        -- grace period counts from it too (check booked_without_appointment). One row by its key
        -- for each alert opened; other entities keep observed_at.
        CASE WHEN observed THEN coalesce(
            CASE f.entity_type
                WHEN 'call' THEN (
                    SELECT guard.app_time(greatest(c.created_at, c.updated_at), (SELECT guard.app_time_zone()))
                    FROM public.calls AS c WHERE c.id = f.entity_id
                )
                WHEN 'appointment' THEN (
                    SELECT guard.app_time(greatest(a.created_at, a.updated_at), (SELECT guard.app_time_zone()))
                    FROM public.appointments AS a WHERE a.id = f.entity_id
                )
            END,
            f.observed_at
        ) END
    FROM unnest(findings) AS f
    -- NOT IN over a subquery is hashed once; `<> ALL (kept)` would search the array per finding.
    -- A row without check_id, entity_type or entity_id (a check view of a DBA's own) has no
    -- fingerprint: NULL NOT IN (...) would drop it unseen; coalesced, it reaches the INSERT and
    -- fails there (fingerprint is NOT NULL), which the caller records as that check's failure.
    WHERE coalesce(f.check_id || ':' || f.entity_type || ':' || f.entity_id, '') NOT IN (SELECT unnest(kept))
    ON CONFLICT (fingerprint) WHERE status = 'open' DO NOTHING;
    GET DIAGNOSTICS opened = ROW_COUNT;
END;
$$;
