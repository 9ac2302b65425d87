-- 0075_breaker_values_in_range: guard.breaker_state and guard.breaker_events hold only values a
-- breaker can write (guard/breaker/stored.py): a generation from 1 to 10^12, counts from 0,
-- times from 1970 to 2286. The application role writes both tables through
-- guard.record_breaker_transitions, which checked no upper bound: a state of generation 9.2e18
-- it wrote for any circuit broke every call of that circuit once Redis lost its copy (the Redis
-- scripts compute in Lua numbers and cannot write such a generation back), and `guard breaker
-- reset` and `trip` with it.
-- Rows that break the new CHECKs were not written by a breaker and are repaired first: a state
-- row whose generation is out of range is deleted (the breaker then restores that circuit as
-- one PostgreSQL never recorded: the state its process last saw, else closed), an event with
-- such a generation too; counts below 0 become 0; an opened-at out of range becomes NULL (a
-- restored open circuit starts its cooldown now), a changed-at or occurred-at out of range the
-- time the row was written. The CHECKs are added NOT VALID (new rows are checked at once) and
-- validated by 0075a.
-- Locks: ROW EXCLUSIVE on both tables while the repairs run (a few rows), ACCESS EXCLUSIVE for
-- an instant to add each CHECK (NOT VALID: no scan).

DELETE FROM guard.breaker_state
WHERE generation NOT BETWEEN 1 AND 1000000000000;

DELETE FROM guard.breaker_events
WHERE generation NOT BETWEEN 1 AND 1000000000000;

UPDATE guard.breaker_state SET
    failure_count = greatest(failure_count, 0),
    success_count = greatest(success_count, 0),
    opened_at = CASE
        WHEN opened_at BETWEEN '1970-01-01 00:00:00+00' AND '2286-11-20 17:46:40+00' THEN opened_at
    END,
    changed_at = CASE
        WHEN changed_at BETWEEN '1970-01-01 00:00:00+00' AND '2286-11-20 17:46:40+00'
            THEN changed_at
        ELSE least(greatest(updated_at, '1970-01-01 00:00:00+00'), '2286-11-20 17:46:40+00')
    END
WHERE
    failure_count < 0
    OR success_count < 0
    OR opened_at NOT BETWEEN '1970-01-01 00:00:00+00' AND '2286-11-20 17:46:40+00'
    OR changed_at NOT BETWEEN '1970-01-01 00:00:00+00' AND '2286-11-20 17:46:40+00';

UPDATE guard.breaker_events SET
    failure_count = greatest(failure_count, 0),
    success_count = greatest(success_count, 0),
    occurred_at = CASE
        WHEN occurred_at BETWEEN '1970-01-01 00:00:00+00' AND '2286-11-20 17:46:40+00'
            THEN occurred_at
        ELSE least(greatest(recorded_at, '1970-01-01 00:00:00+00'), '2286-11-20 17:46:40+00')
    END
WHERE
    failure_count < 0
    OR success_count < 0
    OR occurred_at NOT BETWEEN '1970-01-01 00:00:00+00' AND '2286-11-20 17:46:40+00';

ALTER TABLE guard.breaker_state ADD CONSTRAINT breaker_state_values_in_range CHECK (
    generation BETWEEN 1 AND 1000000000000
    AND failure_count >= 0
    AND success_count >= 0
    AND changed_at BETWEEN '1970-01-01 00:00:00+00' AND '2286-11-20 17:46:40+00'
    AND (opened_at IS NULL OR opened_at BETWEEN '1970-01-01 00:00:00+00' AND '2286-11-20 17:46:40+00')
) NOT VALID;

ALTER TABLE guard.breaker_events ADD CONSTRAINT breaker_events_values_in_range CHECK (
    generation BETWEEN 1 AND 1000000000000
    AND failure_count >= 0
    AND success_count >= 0
    AND occurred_at BETWEEN '1970-01-01 00:00:00+00' AND '2286-11-20 17:46:40+00'
) NOT VALID;
