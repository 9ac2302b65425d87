-- I3: the application wrote booking flags on these calls. In the rule's correct mode, flags that
-- contradict the appointments are corrected (audited, one alert per company); in reject mode the
-- statement fails. A disabled rule lets the write stand (detection still reports it).
-- SECURITY DEFINER: fired by the application's writes, it reads the rule registry and (through
-- refresh_call_flags, which checks the tenant) writes the audit and alerts.
CREATE FUNCTION guard.correct_call_writes(call_ids bigint[], reason text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rule_mode text;
    contradicting integer;
BEGIN
    SELECT r.mode INTO rule_mode
    FROM guard.rules AS r
    WHERE r.id = 'I3_appointment_flags' AND r.enabled;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    IF rule_mode = 'reject' THEN
        contradicting := guard.refresh_call_flags(call_ids, check_only => TRUE);
        IF contradicting > 0 THEN
            RAISE EXCEPTION 'booking flags of % call(s) contradict their appointments', contradicting
                USING
                    ERRCODE = 'check_violation',
                    HINT = 'appointment_made and the appointment link are derived from the '
                    || 'appointments table (rule I3_appointment_flags is in reject mode)';
        END IF;
        RETURN 0;
    END IF;
    RETURN guard.refresh_call_flags(call_ids, audit_reason => reason);
END;
$$;
