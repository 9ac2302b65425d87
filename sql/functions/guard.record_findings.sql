-- Keep guard.alerts in step with what one check found in one scope (guard.run_detection,
-- guard.detect_between): a finding whose open alert was seen within the silence an alert keeps
-- (guard.alert_silence) bumps it (occurrences, last_seen_at); one whose open alert has been
-- silent longer closes that alert as superseded and opens a new one; one without an open alert
-- opens one. Resolving what was not found is the caller's: only it knows the scope. observed
-- (false for guard check --all's history) says whether a new alert keeps its row's observed_at,
-- from which guard.kpis measures detection latency.
-- One UPDATE finds each finding's open alert once and either bumps or supersedes it, and the
-- INSERT gets only the findings left without an open alert: with a statement per outcome every
-- finding was looked up on the open-fingerprint index three times (two UPDATEs and the INSERT's
-- conflict check), which was a third of a pass over 70,000 open alerts (docs/jobs.md).
-- ON CONFLICT DO NOTHING stays: guard.check_call does not wait for a windowed pass, and may have
-- opened the same alert since this UPDATE read the index.
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
BEGIN
    -- Most checks of a call's pass find nothing: no statement to run.
    IF cardinality(findings) = 0 THEN
        opened := 0;
        repeated := 0;
        superseded := 0;
        RETURN;
    END IF;
    -- Every SET expression reads the alert as it was, so all of them test the same silence.
    WITH touched AS (
        UPDATE guard.alerts AS a
        SET
            status = CASE WHEN a.last_seen_at < cutoff THEN 'resolved' ELSE 'open' END,
            resolved_at = CASE WHEN a.last_seen_at < cutoff THEN a.last_seen_at END,
            resolution = CASE WHEN a.last_seen_at < cutoff THEN 'superseded' END,
            occurrences = CASE
                WHEN a.last_seen_at < cutoff THEN a.occurrences ELSE a.occurrences + 1
            END,
            last_seen_at = CASE WHEN a.last_seen_at < cutoff THEN a.last_seen_at ELSE now() END
        FROM unnest(findings) AS f
        WHERE a.status = 'open' AND a.fingerprint = f.check_id || ':' || f.entity_type || ':' || f.entity_id
        RETURNING a.fingerprint, a.status
    )

    SELECT
        coalesce(array_agg(t.fingerprint) FILTER (WHERE t.status = 'open'), '{}'),
        count(*) FILTER (WHERE t.status = 'open'),
        count(*) FILTER (WHERE t.status <> 'open')
    INTO kept, repeated, superseded
    FROM touched AS t;

    INSERT INTO guard.alerts (
        fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details,
        observed_at
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
        -- the detection latency of the alert is first_seen_at - observed_at (guard.kpis)
        CASE WHEN observed THEN f.observed_at END
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
