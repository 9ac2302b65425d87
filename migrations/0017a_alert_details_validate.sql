-- Validate the CHECK that alert details are a JSON object (added NOT VALID by
-- 0017_app_function_hardening). VALIDATE takes a SHARE UPDATE EXCLUSIVE lock: alerts are written
-- and delivered while it scans. Rows written before the CHECK existed were wrapped by that
-- migration; any that slipped in between are wrapped here first (the CHECK refuses new ones).

SET LOCAL lock_timeout = '5s';

UPDATE guard.alerts AS a SET details = jsonb_build_object('context', a.details)
WHERE jsonb_typeof(a.details) IS DISTINCT FROM 'object';

ALTER TABLE guard.alerts VALIDATE CONSTRAINT alerts_details_is_object;
