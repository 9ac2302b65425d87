-- I3, the deferred constraint trigger on guard.flag_checks_at_commit: at commit, the calls whose
-- booking flags this transaction wrote against its appointments are checked again. Flags the
-- transaction made true by then (it inserted the appointment after writing the call) pass
-- silently; the rest are corrected, audited and alerted (guard.refresh_call_flags) in the rule's
-- correct mode, or fail the commit (23514) in reject mode. A disabled rule lets them stand
-- (detection still reports them), and so does stage observe.
-- Rolled out by company (guard.rule_company_stages): each call is judged by the stage and mode
-- of its company (guard.effective_rule_setting); one call of a company in reject mode fails the
-- whole commit. Without any company override the rule's own row decides, as before; all of this
-- runs only when a contradiction is left at commit, never on the everyday booking.
-- The first firing takes every row of the transaction (one set-based pass, whatever the number
-- of statements that wrote flags); later firings of the same commit find nothing.
-- SECURITY DEFINER: it reads and deletes guard.flag_checks_at_commit and writes the audit
-- through refresh_call_flags, none of which the application may do itself.
CREATE OR REPLACE FUNCTION guard.check_flags_at_commit()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- See guard.sync_flags_after_appointment_delete.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    reasons text;
    rule_mode text;
    contradicting bigint[];
    written text[];
    -- No initial values: each would be an expression run on every commit that recorded a check
    -- (bench/instructions.py, "flags, then appointment": about 10k instructions).
    refused bigint[];
    to_correct bigint[];
BEGIN
    -- One statement takes the transaction's rows and judges their calls: each statement a
    -- commit runs starts an executor, and a second one (the derivation,
    -- guard.call_flags_to_correct) cost the everyday commit of a pending check about 28k
    -- instructions of 272k (bench/workload.py --instructions, "book: flags, then appointment",
    -- the commit). The transaction wrote these calls, so
    -- it holds their row locks (or created them): no other writer can change what they derive
    -- from before it commits. Each call's stored flags and whether it has an active appointment
    -- (guard.active_appointment_for_call, as the derivation reads it) are compared by
    -- guard.call_flags_contradict, the rule of guard.call_flags_to_correct with lost = FALSE
    -- (tests/db/test_flag_rule.py proves the two agree); a call deleted since (no row: every
    -- argument NULL) does not contradict, as the derivation finds no row for it. OFFSET 0 keeps
    -- the lateral query apart, so the rule reads has_active as a column instead of copying the
    -- EXISTS into each of its uses (a function with a copied sub-select is not inlined, and
    -- was run as a query of its own). Plain aggregates: each one with DISTINCT or ORDER BY sets
    -- up a sort of its own when the executor starts, which cost the everyday commit (whose call
    -- has its appointment by then, so nothing contradicts) about 20k instructions of 238k
    -- (bench/workload.py --instructions, "book: flags, then appointment", the commit); the
    -- calls are made distinct and ordered, and the reasons written, only when one contradicts.
    WITH taken AS (
        DELETE FROM guard.flag_checks_at_commit AS p
        WHERE p.xact = pg_current_xact_id()
        RETURNING p.call_ids, p.written_by
    )

    SELECT
        array_agg(x.id) FILTER (
            WHERE guard.call_flags_contradict(
                s.appointment_made,
                s.appointment_link_status,
                s.appointment_linked_at,
                s.session_outcome,
                s.booking_failed,
                s.has_active
            )
        ),
        array_agg(t.written_by)
    INTO contradicting, written
    FROM taken AS t
    CROSS JOIN LATERAL unnest(t.call_ids) AS x (id)
    LEFT JOIN LATERAL (
        SELECT
            c.appointment_made,
            c.appointment_link_status,
            c.appointment_linked_at,
            c.session_outcome,
            c.booking_failed,
            h.has_active
        FROM public.calls AS c
        CROSS JOIN LATERAL guard.active_appointment_for_call(c.id, c.company_id) AS h
        WHERE c.id = x.id
        OFFSET 0
    ) AS s ON TRUE;
    -- NULL: no row taken, or no call of them contradicts its appointments
    IF contradicting IS NULL THEN
        RETURN NULL;
    END IF;
    -- Something contradicts: each call once, in id order, and the reasons of every row taken.
    SELECT
        ARRAY(SELECT DISTINCT u.id FROM unnest(contradicting) AS u (id) ORDER BY u.id),
        string_agg(DISTINCT r.reason, '; ' ORDER BY r.reason)
    INTO contradicting, reasons
    FROM (
        SELECT
            CASE w.written_by
                WHEN 'insert' THEN 'a new call claimed a booking its appointments do not show'
                ELSE 'an update wrote booking flags that contradict the appointments'
            END AS reason
        FROM unnest(written) AS w (written_by)
    ) AS r;
    -- The rule's row alone decides the case without company overrides: no row (disabled, or at
    -- stage observe: the writes stand), else its mode, or 'by company' when any company has its
    -- own (company_overrides, kept by the triggers of guard.rule_company_stages). One statement
    -- and one test before the correction, as before the rollout: an EXISTS on that table cost
    -- every corrected commit about 30k instructions, a test of its own about 10k
    -- (bench/instructions.py).
    SELECT CASE WHEN r.company_overrides > 0 THEN 'by company' ELSE r.mode END
    INTO rule_mode
    FROM guard.rules AS r
    WHERE
        r.id = 'I3_appointment_flags' AND r.enabled
        AND (r.stage <> 'observe' OR r.company_overrides > 0);
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- Reject mode, or companies of their own: each call by its company's setting (in reject mode
    -- without overrides every call is refused, the commit fails either way).
    IF rule_mode <> 'correct' THEN
        SELECT
            array_agg(c.id ORDER BY c.id) FILTER (
                WHERE e.stage <> 'observe' AND e.mode = 'reject'
            ),
            array_agg(c.id ORDER BY c.id) FILTER (
                WHERE e.stage <> 'observe' AND e.mode = 'correct'
            )
        INTO refused, to_correct
        FROM public.calls AS c
        CROSS JOIN LATERAL guard.effective_rule_setting('I3_appointment_flags', c.company_id) AS e
        WHERE c.id = ANY(contradicting);
        -- NULL (no call of that kind) is not greater than 0.
        IF cardinality(refused) > 0 THEN
            RAISE EXCEPTION 'booking flags of % call(s) contradict their appointments',
                cardinality(refused)
                USING
                    ERRCODE = 'check_violation',
                    HINT = 'appointment_made and the appointment link are derived from the '
                    || 'appointments table (rule I3_appointment_flags is in reject mode for '
                    || 'the company of each); checked when the transaction commits';
        END IF;
        IF cardinality(to_correct) > 0 THEN
            PERFORM guard.refresh_call_flags(to_correct, reasons);
        END IF;
        RETURN NULL;
    END IF;
    PERFORM guard.refresh_call_flags(contradicting, reasons);
    RETURN NULL;
END;
$$;
