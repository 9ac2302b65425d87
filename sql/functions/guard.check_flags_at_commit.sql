-- I3, the deferred constraint trigger on guard.flag_checks_at_commit: at commit, the calls whose
-- booking flags this transaction wrote against its appointments are checked again. Flags the
-- transaction made true by then (it inserted the appointment after writing the call) pass
-- silently; the rest are corrected, audited and alerted (guard.refresh_call_flags) in the rule's
-- correct mode, or fail the commit (23514) in reject mode. A disabled rule lets them stand
-- (detection still reports them).
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
    call_ids bigint[];
    reasons text;
    rule_mode text;
    contradicting bigint[];
BEGIN
    WITH taken AS (
        DELETE FROM guard.flag_checks_at_commit AS p
        WHERE p.xact = pg_current_xact_id()
        RETURNING
            p.call_ids,
            CASE p.written_by
                WHEN 'insert' THEN 'a new call claimed a booking its appointments do not show'
                ELSE 'an update wrote booking flags that contradict the appointments'
            END AS reason
    )

    SELECT
        array_agg(DISTINCT x.id ORDER BY x.id),
        string_agg(DISTINCT t.reason, '; ' ORDER BY t.reason)
    INTO call_ids, reasons
    FROM taken AS t CROSS JOIN LATERAL unnest(t.call_ids) AS x (id);
    IF call_ids IS NULL THEN
        RETURN NULL;
    END IF;

    -- The transaction wrote these calls, so it holds their row locks (or created them): no
    -- other writer can change what they derive from before it commits.
    contradicting := ARRAY(SELECT f.id FROM guard.call_flags_to_correct(call_ids, FALSE) AS f);
    IF cardinality(contradicting) = 0 THEN
        RETURN NULL;
    END IF;
    SELECT r.mode INTO rule_mode
    FROM guard.rules AS r
    WHERE r.id = 'I3_appointment_flags' AND r.enabled;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF rule_mode = 'reject' THEN
        RAISE EXCEPTION 'booking flags of % call(s) contradict their appointments',
            cardinality(contradicting)
            USING
                ERRCODE = 'check_violation',
                HINT = 'appointment_made and the appointment link are derived from the '
                || 'appointments table (rule I3_appointment_flags is in reject mode); '
                || 'checked when the transaction commits';
    END IF;
    PERFORM guard.refresh_call_flags(contradicting, reasons);
    RETURN NULL;
END;
$$;
