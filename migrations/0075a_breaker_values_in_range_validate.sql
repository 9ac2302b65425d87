-- 0075a_breaker_values_in_range_validate: validate the CHECKs 0075_breaker_values_in_range added
-- NOT VALID. That migration repaired every row that broke them and new rows were checked since,
-- so the scans cannot fail.
-- Locks: SHARE UPDATE EXCLUSIVE on guard.breaker_state and guard.breaker_events while each
-- VALIDATE scans (the breakers' write-behind goes on).

ALTER TABLE guard.breaker_state VALIDATE CONSTRAINT breaker_state_values_in_range;

ALTER TABLE guard.breaker_events VALIDATE CONSTRAINT breaker_events_values_in_range;
