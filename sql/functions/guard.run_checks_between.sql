-- One batch of a detection pass over the whole history (`guard check --all`, which reads its rows
-- whole; guard.detect_between returns them without status and error): every enabled check, or
-- only_check alone, over the rows observed in [since, until), opening and bumping alerts as
-- run_detection does. It never resolves: a batch cannot tell a fixed row from one outside its
-- range, so the caller ends with an ordinary windowed pass (guard.detect()), which probes the
-- open alerts.
-- Batches keep each transaction, and the detection lock it holds, short on a large history; a
-- check's joins read their tables whole in every batch, so `guard check --all` runs one check per
-- transaction (only_check), over the whole history unless it is large.
-- Its alerts carry no observed_at: a row of last year found today is history being read, not the
-- detection latency guard.kpis measures.
-- Each check runs isolated, as in run_detection: one that raises returns status failed (error
-- says why, phone numbers masked) and raises check_failed; one the batch's statement timeout cuts
-- returns cut, and the checks after it skipped; the others' work is kept. The checks run in
-- guard.history_checks' order: own checks after Booking Guard's, failing ones last.
-- candidate_ids (with only_check, a shipped check of calls): the calls guard.history_call_candidates
-- found for only_check over the same range, read by key in the view instead of the view whole
-- (`guard check --all` reads the calls once for three checks); NULL, the view is read whole.
CREATE OR REPLACE FUNCTION guard.run_checks_between(
    since timestamptz, until timestamptz, only_check text DEFAULT NULL, candidate_ids bigint[] DEFAULT NULL
)
RETURNS TABLE (
    check_id text, rule_id text, offending integer, opened integer, repeated integer,
    status text, error text
)
LANGUAGE plpgsql
SET search_path = pg_catalog
-- Parallel workers, unlike guard.run_checks: a batch reads whole tables, which they read in about
-- half the time at 1M calls (bench/full_pass.py), and so hold the detection lock half as long.
SET jit = off
AS $$
DECLARE
    detection_check record;
    -- the advisory locks held before the first own check was read (guard.read_own_check)
    own_locks text[];
    findings guard.finding[];
    silence interval := guard.alert_silence();
    open_alerts bigint;
    superseded integer;
    failed_state text;
    check_started timestamptz;
    cut_during text;
    -- a shipped check's offending rows, as entity_type:entity_id, and their entity ids
    offending_keys text[];
    offending_ids bigint[];
    checked_from text;
    -- at most this many offending rows are read again by their key (see below)
    keyed_reread_limit CONSTANT integer := 10000;
BEGIN
    IF since IS NULL OR until IS NULL OR since >= until THEN
        RAISE EXCEPTION 'run_checks_between needs since < until (got % and %)', since, until
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection', 0));
    -- As in run_detection: the planner's estimate of the open alerts is checked before each
    -- check's statements (a batch over history can open thousands).
    SELECT count(*) INTO open_alerts FROM guard.alerts AS a WHERE a.status = 'open';
    FOR detection_check IN
        SELECT h.check_id AS id, h.rule_id, h.check_view, h.description
        FROM guard.history_checks() WITH ORDINALITY AS h
        WHERE only_check IS NULL OR h.check_id = only_check
        ORDER BY h.ordinality
    LOOP
        check_id := detection_check.id;
        rule_id := detection_check.rule_id;
        offending := NULL;
        opened := 0;
        repeated := 0;
        status := 'ok';
        error := NULL;
        IF cut_during IS NOT NULL THEN
            status := 'skipped';
            error := format(
                'the statement timeout (%s) fired during check %s',
                current_setting('statement_timeout'), cut_during
            );
            RETURN NEXT;
            CONTINUE;
        END IF;
        check_started := clock_timestamp();
        -- the session's advisory locks before its first own check (released after the last)
        IF detection_check.check_view <> ALL(guard.shipped_check_views()) AND own_locks IS NULL THEN
            own_locks := guard.advisory_locks_held();
        END IF;
        BEGIN
            PERFORM guard.analyze_alerts_if_stale(open_alerts);
            -- a DBA's own check is read in its sandbox (guard.read_own_check)
            checked_from := CASE WHEN detection_check.check_view = ANY(guard.shipped_check_views())
                THEN format('guard.%I', detection_check.check_view)
                ELSE format('guard.read_own_check(%L, $1, $2, NULL, NULL)', detection_check.check_view) END;
            offending_keys := NULL;
            offending_ids := NULL;
            -- A shipped check is read in two statements: the key of each offending row first,
            -- which carries only the key through the view's joins (the whole row carries every
            -- column its detail reads, through every join, for each row of calls: measurably
            -- more work at 1M calls, bench/full_pass.py), then those rows whole, by their key
            -- (an index of the view's table). None offending, the second is not run; more than
            -- keyed_reread_limit, or a key NULL, it reads the view again as the first did. Both
            -- run under the batch's statement timeout; a row fixed between them is not found.
            IF detection_check.check_view = ANY(guard.shipped_check_views())
                AND only_check IS NOT NULL AND candidate_ids IS NOT NULL THEN
                offending_keys := ARRAY(SELECT 'call:' || u.id FROM unnest(candidate_ids) AS u (id));
                offending_ids := candidate_ids;
            ELSIF detection_check.check_view = ANY(guard.shipped_check_views()) THEN
                EXECUTE format(
                    $query$
                    SELECT
                        coalesce(array_agg(v.entity_type || ':' || v.entity_id), '{}'),
                        coalesce(array_agg(v.entity_id), '{}')
                    FROM %1$s AS v
                    WHERE v.observed_at >= $1 AND v.observed_at < $2
                    $query$,
                    checked_from
                ) INTO offending_keys, offending_ids USING since, until;
            END IF;
            IF cardinality(offending_keys) = 0 THEN
                findings := '{}';
            ELSE
                EXECUTE format(
                    $query$
                    SELECT coalesce(array_agg(ROW(
                        v.check_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                        v.observed_at, v.detail
                    )::guard.finding), '{}')
                    FROM %1$s AS v
                    WHERE v.observed_at >= $1 AND v.observed_at < $2 %2$s
                    $query$,
                    checked_from,
                    CASE
                        WHEN cardinality(offending_keys) <= keyed_reread_limit
                            AND array_position(offending_keys, NULL) IS NULL
                            THEN 'AND v.entity_id = ANY($4) AND v.entity_type || '':'' || v.entity_id = ANY($3)'
                        ELSE ''
                    END
                ) INTO findings USING since, until, offending_keys, offending_ids;
            END IF;
            offending := cardinality(findings);

            -- No observed_at (see above).
            SELECT r.opened, r.repeated, r.superseded INTO opened, repeated, superseded
            FROM guard.record_findings(findings, detection_check.description, silence, FALSE) AS r;
        EXCEPTION WHEN query_canceled OR OTHERS THEN
            GET STACKED DIAGNOSTICS error = MESSAGE_TEXT, failed_state = RETURNED_SQLSTATE;
            IF failed_state = '57014' AND NOT guard.statement_timed_out() THEN
                RAISE;
            END IF;
            status := CASE failed_state WHEN '57014' THEN 'cut' ELSE 'failed' END;
        END;
        IF status <> 'ok' THEN
            offending := NULL;
            opened := 0;
            repeated := 0;
            IF status = 'cut' THEN
                cut_during := detection_check.id;
            END IF;
            error := guard.report_check_failure(
                detection_check.id, failed_state, error, check_started,
                'in a batch of the whole history',
                jsonb_build_object('in', 'history', 'since', since, 'until', until)
            );
        ELSE
            open_alerts := open_alerts + opened - superseded;
        END IF;
        RETURN NEXT;
    END LOOP;
    IF own_locks IS NOT NULL THEN
        PERFORM guard.release_advisory_locks_since(own_locks);
    END IF;
END;
$$;
