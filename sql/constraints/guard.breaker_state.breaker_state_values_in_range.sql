-- A circuit's recorded state holds only values a breaker can write (guard/breaker/stored.py): a
-- generation from 1 to 10^12 (the Redis scripts compute in Lua numbers and lose an integer of
-- 1e14 or more: a generation of 9.2e18 written through guard.record_breaker_transitions once
-- broke every call of the circuit it was restored to), counts from 0, and times between 1970 and
-- 2286 (epoch milliseconds below 10^13; never infinity). The breaker still checks what it reads.
ALTER TABLE guard.breaker_state ADD CONSTRAINT breaker_state_values_in_range CHECK (
    generation BETWEEN 1 AND 1000000000000
    AND failure_count >= 0
    AND success_count >= 0
    AND changed_at BETWEEN '1970-01-01 00:00:00+00' AND '2286-11-20 17:46:40+00'
    AND (opened_at IS NULL OR opened_at BETWEEN '1970-01-01 00:00:00+00' AND '2286-11-20 17:46:40+00')
);
