-- A circuit's recorded transitions hold only values a breaker can write, as its state row does
-- (guard.breaker_state's breaker_state_values_in_range): guard.breaker_restore_state restores the
-- highest generation of either, so an event may not hold one the breaker cannot compute with.
ALTER TABLE guard.breaker_events ADD CONSTRAINT breaker_events_values_in_range CHECK (
    generation BETWEEN 1 AND 1000000000000
    AND failure_count >= 0
    AND success_count >= 0
    AND occurred_at BETWEEN '1970-01-01 00:00:00+00' AND '2286-11-20 17:46:40+00'
);
