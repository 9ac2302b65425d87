-- Run every enabled check that has a check view (guard.checks), over one scope, and keep
-- guard.alerts in step:
--   since     rows observed since then (the windowed pass: detect)
--   only_call the rows of one call (check_call); since is then ignored
-- In the windowed pass each check also re-checks the entity of every open alert of that check, so
-- that an alert whose row was fixed is resolved even when the row is older than the window. Alerts
-- are de-duplicated by fingerprint (check:entity_type:entity_id): a repeat within the silence an
-- alert may keep (guard.alert_silence: the throttle window past the pass that was due) bumps
-- occurrences and last_seen_at; a repeat after a longer silence closes the old alert as
-- superseded and opens a new one (guard.record_findings). Nothing is deleted or rewritten.
-- Windowed passes are serialised by a transaction advisory lock. A call's pass (check_call) never
-- waits on it: it takes a lock of its own call only, and waits at most check_call_lock_timeout_ms
-- on alert rows another transaction holds (the windowed pass writing the same alerts); past that
-- it leaves that check's alerts to the transaction that holds them and reports 0 opened, repeated
-- and resolved for it. The unique index on open fingerprints keeps one open alert per fingerprint
-- whichever writer wins. One row per check, with its rule.
CREATE OR REPLACE FUNCTION guard.run_detection(since timestamptz, only_call bigint)
RETURNS TABLE (
    check_id text, rule_id text, offending integer, opened integer, repeated integer, resolved integer
)
LANGUAGE plpgsql
SET search_path = pg_catalog
-- Each check's query is a few index scans; starting parallel workers costs more than it saves
-- (docs/invariants.md, "Measured reasons for the shapes in sql/").
SET max_parallel_workers_per_gather = 0
SET jit = off
-- A pass reads a bounded set (the window, the open alerts) through indexes, on pages that are in
-- memory. Priced as disk reads (the default 4), probing appointments per open alert lost to a hash
-- join over every appointment, a cost that grows with the history: 420 ms of one check at 1M
-- calls, 200 ms at 1.1; the whole pass 18-26 % faster (docs/invariants.md).
SET random_page_cost = 1.1
-- And index paths only, whatever the statistics say: every read of a pass is bounded (the window,
-- the open alerts, one call) and keyed. On tables never analysed (after a bulk load) the planner
-- hashed every appointment or intersected a company's million calls per alert: the checks of one
-- pass over 10M calls took more than 110 s; with these, 0.65 s, and about the same as before once
-- analysed. A check view with no usable index still gets its sequential scan, priced high.
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    detection_check record;
    findings guard.finding[];
    open_alert_ids bigint[];
    open_ids bigint[];
    open_fingerprints text[];
    unfound bigint[];
    call_query text;
    call_statement text;
    caller_lock_timeout text := current_setting('lock_timeout');
    call_lock_timeout text;
    pass_started timestamptz := clock_timestamp();
    check_started timestamptz;
    silence interval := guard.alert_silence();
    window_calls bigint;
    check_outcome text;
    open_alerts bigint;
    superseded integer;
BEGIN
    IF only_call IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection', 0));
        -- Kept up to date below, so that the planner's estimate can be checked before each
        -- check's statements (guard.analyze_alerts_if_stale) without counting again.
        SELECT count(*) INTO open_alerts FROM guard.alerts AS a WHERE a.status = 'open';
    ELSE
        -- Two checks of one call run one after the other; the windowed pass is not waited for.
        PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection:call:' || only_call, 0));
        call_lock_timeout := (guard.setting('check_call_lock_timeout_ms') #>> '{}') || 'ms';
    END IF;
    FOR detection_check IN
        SELECT
            k.id, k.rule_id, k.check_view, k.description, k.threshold_unit,
            k.warn_above IS NOT NULL OR k.error_above IS NOT NULL AS has_thresholds
        FROM guard.checks AS k
        WHERE k.enabled AND k.check_view IS NOT NULL
        ORDER BY k.id
    LOOP
        check_started := clock_timestamp();
        IF only_call IS NULL THEN
            PERFORM guard.analyze_alerts_if_stale(open_alerts);
            -- The open alerts of this check first, through the index led by check_id, then the
            -- view probed once per open alert's entity (LATERAL, kept apart by OFFSET 0, so the
            -- entity id reaches the view's own index scans as a parameter), each matched to its
            -- alert's fingerprint. Joined in one query, statistics taken before a burst of new
            -- alerts (an estimate of 1 open alert for thousands) made the planner loop over a
            -- sequential scan of calls per alert; filtered with entity_id = ANY(the open ids),
            -- it read the view's whole window once per open alert (9.5 s for 5,400 open alerts
            -- of recent_booking_failure after a burst of 78,000 calls; probed, 0.16 s), and
            -- fingerprint = ANY compared every row with every open fingerprint.
            -- An open alert whose probe finds its row no more is fixed: the same query returns
            -- those alerts' ids, so resolving them reads no open alert again (the statement
            -- that did compared every open alert of the check with the findings: a tenth of a
            -- pass over 70,000 open alerts). They are the alerts open when the view was read:
            -- one a check_call opened since is not among them and cannot look fixed.
            SELECT
                coalesce(array_agg(a.id), '{}'),
                coalesce(array_agg(a.entity_id), '{}'),
                coalesce(array_agg(a.fingerprint), '{}')
            INTO open_alert_ids, open_ids, open_fingerprints
            FROM guard.alerts AS a
            WHERE a.status = 'open' AND a.check_id = detection_check.id;
            -- The window first; then the open alerts it did not find, each probed. An open
            -- alert the window found needs no probe: its row offends (a burst's alerts are all
            -- in the window). NOT IN over the findings is hashed once (their estimate is small
            -- whatever their number); the window's rows are distinct, as they were in a UNION.
            EXECUTE format(
                $query$
                SELECT coalesce(array_agg(ROW(
                    w.check_id, w.company_id, w.entity_type, w.entity_id, w.call_id, w.severity,
                    w.observed_at, w.detail
                )::guard.finding), '{}')
                FROM (
                    SELECT DISTINCT
                        v.check_id, v.company_id, v.entity_type, v.entity_id, v.call_id,
                        v.severity, v.observed_at, v.detail
                    FROM guard.%1$I AS v WHERE v.observed_at >= $1
                ) AS w
                $query$,
                detection_check.check_view
            ) INTO findings USING since;
            EXECUTE format(
                $query$
                WITH probed AS MATERIALIZED (
                    SELECT
                        o.alert_id, k.check_id, k.company_id, k.entity_type, k.entity_id,
                        k.call_id, k.severity, k.observed_at, k.detail
                    FROM unnest($1, $2, $3) AS o (alert_id, entity_id, fingerprint)
                    LEFT JOIN LATERAL (
                        SELECT x.* FROM guard.%1$I AS x WHERE x.entity_id = o.entity_id OFFSET 0
                    ) AS k
                        ON k.check_id || ':' || k.entity_type || ':' || k.entity_id = o.fingerprint
                    WHERE o.fingerprint NOT IN (
                        SELECT f.check_id || ':' || f.entity_type || ':' || f.entity_id
                        FROM unnest($4) AS f
                    )
                )
                SELECT
                    $4 || (
                        SELECT coalesce(array_agg(DISTINCT ROW(
                            p.check_id, p.company_id, p.entity_type, p.entity_id, p.call_id,
                            p.severity, p.observed_at, p.detail
                        )::guard.finding), '{}')
                        FROM probed AS p WHERE p.check_id IS NOT NULL
                    ),
                    (
                        SELECT coalesce(array_agg(p.alert_id), '{}') FROM probed AS p
                        WHERE p.check_id IS NULL
                    )
                $query$,
                detection_check.check_view
            ) INTO findings, unfound USING open_alert_ids, open_ids, open_fingerprints, findings;
        ELSE
            -- A call's pass runs on the application's path, once per booking: each check's
            -- query is prepared once per session (named by its text, so a new text gets a new
            -- statement) and executed with the call's id. Planned at every EXECUTE, the views
            -- of one check_call cost 4.2 ms of planning; prepared, 0.7 ms (docs/invariants.md).
            call_query := format(
                $query$
                SELECT coalesce(array_agg(ROW(
                    v.check_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                    v.observed_at, v.detail
                )::guard.finding), '{}')
                FROM guard.%1$I AS v
                WHERE v.call_id = $1
                $query$,
                detection_check.check_view
            );
            call_statement := 'guard_check_call_' || md5(call_query);
            IF NOT EXISTS (SELECT FROM pg_prepared_statements AS p WHERE p.name = call_statement) THEN
                EXECUTE format('PREPARE %I (bigint) AS %s', call_statement, call_query);
            END IF;
            EXECUTE format('EXECUTE %I(%s)', call_statement, only_call) INTO findings;
        END IF;

        check_id := detection_check.id;
        rule_id := detection_check.rule_id;
        offending := cardinality(findings);

        IF only_call IS NOT NULL THEN
            PERFORM set_config('lock_timeout', call_lock_timeout, TRUE);
        END IF;
        BEGIN
            SELECT r.opened, r.repeated, r.superseded INTO opened, repeated, superseded
            FROM guard.record_findings(findings, detection_check.description, silence, TRUE) AS r;

            -- Open alerts of this check in this scope whose row no longer offends: fixed.
            IF only_call IS NULL THEN
                UPDATE guard.alerts AS a
                SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
                WHERE a.id = ANY(unfound) AND a.status = 'open';
            ELSE
                -- The call's alerts and its appointments', each found by its full key on
                -- alerts_open_by_check_idx. Written as one condition with ORs, the scan read every
                -- open alert of the check (bitmap scans are off in a pass): 55 ms a check_call
                -- with 70,000 open alerts, against 3 ms for its views.
                UPDATE guard.alerts AS a
                SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
                WHERE
                    a.id IN (
                        SELECT o.id FROM guard.alerts AS o
                        WHERE
                            o.status = 'open'
                            AND o.check_id = detection_check.id
                            AND o.entity_type = 'call'
                            AND o.entity_id = only_call
                        UNION ALL
                        SELECT o.id
                        FROM public.appointments AS ap
                        INNER JOIN guard.alerts AS o
                            ON
                                o.status = 'open'
                                AND o.check_id = detection_check.id
                                AND o.entity_type = 'appointment'
                                AND ap.id = o.entity_id
                        WHERE ap.call_id = only_call
                    )
                    AND a.status = 'open'
                    AND a.fingerprint NOT IN (
                        SELECT f.check_id || ':' || f.entity_type || ':' || f.entity_id
                        FROM unnest(findings) AS f
                    );
            END IF;
            GET DIAGNOSTICS resolved = ROW_COUNT;
        EXCEPTION WHEN lock_not_available THEN
            IF only_call IS NULL THEN
                RAISE;
            END IF;
            -- Another transaction holds this call's alerts of this check (the windowed pass
            -- writing them): it keeps them; its commit is what the alerts show.
            opened := 0;
            repeated := 0;
            resolved := 0;
        END;
        IF only_call IS NOT NULL THEN
            PERFORM set_config('lock_timeout', caller_lock_timeout, TRUE);
        ELSE
            open_alerts := open_alerts + opened - resolved - superseded;
            -- The DBA's thresholds judge the whole pass (guard.judge_check_threshold). A count
            -- is of every offending row the pass found; a rate is of the rows observed in the
            -- window (not the older ones whose open alerts were re-checked) per 100 calls
            -- created in it, counted once per pass on its index; a window without calls counts
            -- as one call, so that rows offending then still fail and none pass.
            check_outcome := NULL;
            IF detection_check.has_thresholds THEN
                IF detection_check.threshold_unit = 'rate_pct' AND window_calls IS NULL THEN
                    SELECT count(*) INTO window_calls FROM public.calls AS c WHERE c.created_at >= since;
                END IF;
                check_outcome := guard.judge_check_threshold(
                    detection_check.id,
                    CASE detection_check.threshold_unit
                        WHEN 'rate_pct' THEN round(
                            100.0
                            * (SELECT count(*) FROM unnest(findings) AS f WHERE f.observed_at >= since)
                            / greatest(window_calls, 1),
                            2
                        )
                        ELSE offending
                    END
                );
            END IF;
            -- The history BI charts (guard.detection_passes); not for check_call's one call.
            INSERT INTO guard.detection_runs (
                pass_started_at, window_start, check_id, rule_id, duration_ms,
                offending, opened, repeated, resolved, outcome
            ) VALUES (
                -- '-infinity' (the whole history) is stored as NULL: BI clients cannot read it
                pass_started, nullif(since, '-infinity'), detection_check.id, detection_check.rule_id,
                1000 * extract(EPOCH FROM clock_timestamp() - check_started),
                offending, opened, repeated, resolved, check_outcome
            );
        END IF;
        RETURN NEXT;
    END LOOP;
    IF only_call IS NULL THEN
        -- A threshold alert about a check that is no longer judged (its thresholds removed, the
        -- check disabled or gone) would stay open for ever: the DBA's change closes it.
        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = now(), resolution = 'manual'
        WHERE
            a.status = 'open'
            AND a.check_id = 'check_threshold'
            AND NOT EXISTS (
                SELECT FROM guard.checks AS k
                WHERE
                    a.fingerprint = 'check_threshold:check:' || k.id
                    AND k.enabled
                    AND k.check_view IS NOT NULL
                    AND (k.warn_above IS NOT NULL OR k.error_above IS NOT NULL)
            );
    END IF;
END;
$$;
