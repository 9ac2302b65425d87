-- Rollback of 0075_breaker_values_in_range: the CHECKs go. The rows it repaired or deleted were
-- not written by a breaker and are not brought back.

ALTER TABLE guard.breaker_events DROP CONSTRAINT breaker_events_values_in_range;

ALTER TABLE guard.breaker_state DROP CONSTRAINT breaker_state_values_in_range;
