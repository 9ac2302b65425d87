-- guard.record_breaker_transitions replaces a circuit's state row that holds a value no breaker
-- writes (a generation beyond 10^12, stored before the CHECK breaker_state_values_in_range
-- existed) with any new state, even of a lower generation: the state only moves to a newer
-- generation otherwise, and a bad row would hold its circuit for good. The CHECK is dropped
-- inside this transaction to store such a row, as a database older than the CHECK has it.
BEGIN;
SELECT plan(3);

ALTER TABLE guard.breaker_state DROP CONSTRAINT breaker_state_values_in_range;
INSERT INTO guard.breaker_state (key, state, generation, changed_at)
VALUES ('too-far', 'forced_open', 100000000000000, now()), ('in-range', 'open', 7, now());

SELECT is(
    guard.record_breaker_transitions(
        '[{"key": "too-far", "generation": 3, "from_state": "closed", "to_state": "open",
           "host": "h", "pid": 1, "occurred_at": "2026-01-01T00:00:00Z"},
          {"key": "in-range", "generation": 3, "from_state": "closed", "to_state": "closed",
           "host": "h", "pid": 1, "occurred_at": "2026-01-01T00:00:00Z"}]'
    ),
    2,
    'record_breaker_transitions: both events are recorded'
);
SELECT results_eq(
    $$SELECT state, generation FROM guard.breaker_state WHERE key = 'too-far'$$,
    $$VALUES ('open', 3::bigint)$$,
    'record_breaker_transitions: a state row beyond the generations a breaker writes is replaced'
);
SELECT results_eq(
    $$SELECT state, generation FROM guard.breaker_state WHERE key = 'in-range'$$,
    $$VALUES ('open', 7::bigint)$$,
    'record_breaker_transitions: a state row of a newer generation in range is kept'
);

SELECT * FROM finish();
ROLLBACK;
