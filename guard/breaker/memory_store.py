"""Per-process store with exactly the rules of the Lua scripts.

Used for purely in-memory breakers and as the fallback while Redis is unreachable (the breaker
then keeps protecting the dependency from this process under the same rules instead of failing
open). Time is ``time.monotonic`` in ms; a lock makes each decision atomic across threads.

The hot path (a success in CLOSED with no failures) changes nothing, so it takes no lock: it
reads one attribute, ``hot_reply``, which every locked mutation keeps set to the constant
reply of the current generation while the circuit is CLOSED with zero failures and to None
otherwise. One attribute read is atomic, so that read is the decision's linearisation point;
reading state, failures and generation one by one could mix two generations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from guard.breaker.state import BreakerConfig, Outcome, Reply, SharedRules, State

# Enum members as module constants: ``State.CLOSED`` is a class attribute lookup costing more
# than the whole hot path's comparison.
_CLOSED = State.CLOSED
_SUCCESS = Outcome.SUCCESS


@dataclass(slots=True)
class _Circuit:
    state: State = State.CLOSED
    generation: int = 0
    failures: int = 0
    successes: int = 0
    opened_at_ms: int = 0
    probe_until_ms: int = 0
    probe_seq: int = 0
    hot_reply: Reply | None = None  # set only while CLOSED with 0 failures
    # The circuit's rules, stored by its first writer as in Redis (None until then).
    rules: SharedRules | None = None
    changed_at_ms: int = 0

    def rules_for(self, cfg: BreakerConfig, store: bool = True) -> SharedRules:
        """The stored rules; without any, the caller's (stored unless ``store`` is False: a
        manual action does not make its caller the circuit's first writer, as in Redis)."""
        rules = self.rules
        if rules is None:
            rules = cfg.shared_rules
            if store:
                self.rules = rules
        return rules

    def update_hot(self) -> None:
        """Call after every change of state, failures or generation (under the lock)."""
        if self.state is _CLOSED and self.failures == 0:
            hot = self.hot_reply
            if hot is None or hot.generation != self.generation:
                self.hot_reply = Reply(1, _CLOSED, self.generation, 0, 0, 0, 0, -1, 0, "")
        else:
            self.hot_reply = None


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class MemoryStore:
    """Circuits of one process. Thread-safe; every method is one atomic decision.

    ``clock`` returns milliseconds; tests pass one they can step (the differential test).
    """

    def __init__(self, clock: Callable[[], int] = monotonic_ms) -> None:
        self._lock = threading.Lock()
        self._circuits: dict[str, _Circuit] = {}
        self._clock = clock

    def seed(self, key: str, state: State, generation: int, open_remaining_ms: int) -> None:
        """Start a circuit from the last state seen elsewhere (Redis) unless already known."""
        with self._lock:
            if key in self._circuits:
                return
            circuit = _Circuit(state=state, generation=generation)
            if state in (State.OPEN, State.FORCED_OPEN, State.HALF_OPEN):
                # HALF_OPEN elsewhere: stay careful and wait out a cooldown from here.
                circuit.state = State.FORCED_OPEN if state is State.FORCED_OPEN else State.OPEN
            if circuit.state is State.OPEN:
                circuit.opened_at_ms = self._clock() + max(0, open_remaining_ms)
            circuit.update_hot()
            self._circuits[key] = circuit

    def forget(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._circuits.clear()
            else:
                self._circuits.pop(key, None)

    def _get(self, key: str) -> _Circuit:
        circuit = self._circuits.get(key)
        if circuit is None:
            circuit = self._circuits[key] = _Circuit()
            circuit.update_hot()
        return circuit

    @staticmethod
    def _move(c: _Circuit, to: State, now: int) -> tuple[int, int, int]:
        previous = (int(c.state), c.failures, c.successes)
        c.state = to
        c.generation += 1
        c.probe_until_ms = 0
        c.changed_at_ms = now
        if to in (State.OPEN, State.FORCED_OPEN):
            c.opened_at_ms = now
            c.successes = 0
        elif to is State.HALF_OPEN:
            c.failures = c.successes = 0
        else:
            c.failures = c.successes = c.opened_at_ms = 0
        c.update_hot()
        return previous

    @staticmethod
    def _reply(
        code: int,
        c: _Circuit,
        cfg: BreakerConfig,
        now: int,
        moved: tuple[int, int, int] | None,
        reason: str,
        store_rules: bool = True,
    ) -> Reply:
        cooldown = c.rules_for(cfg, store_rules).cooldown_ms
        open_until = c.opened_at_ms + cooldown if c.state is State.OPEN else 0
        # The reply of a transition carries the counts that caused it (for the event record).
        from_state, failures, successes = moved or (-1, c.failures, c.successes)
        return Reply(
            code,
            c.state,
            c.generation,
            failures,
            successes,
            open_until,
            now,
            from_state,
            c.probe_seq,
            reason,
        )

    def acquire(self, key: str, cfg: BreakerConfig) -> Reply:
        with self._lock:
            c = self._get(key)
            now = self._clock()
            code, reason = 1, ""
            moved: tuple[int, int, int] | None = None
            rules = c.rules_for(cfg)
            if c.state is State.OPEN:
                if now < c.opened_at_ms + rules.cooldown_ms:
                    code = 0
                else:
                    reason = "cooldown elapsed"
                    moved = self._move(c, State.HALF_OPEN, now)
            if c.state is State.HALF_OPEN:
                if c.probe_until_ms > now:
                    code = 0
                else:
                    c.probe_seq += 1
                    c.probe_until_ms = now + cfg.probe_lease_ms
                    code = 2
            elif c.state is State.FORCED_OPEN:
                code = 0
            return self._reply(code, c, cfg, now, moved, reason)

    def record(
        self, key: str, cfg: BreakerConfig, generation: int, outcome: Outcome, probe_seq: int
    ) -> Reply:
        circuit = self._circuits.get(key)
        if outcome is _SUCCESS and circuit is not None:
            hot = circuit.hot_reply
            if hot is not None and hot.generation == generation:
                return hot  # as in the Lua script: nothing changes, the reply is constant
        with self._lock:
            c = self._get(key)
            now = self._clock()
            code, reason = 0, ""
            moved: tuple[int, int, int] | None = None
            rules = c.rules_for(cfg)
            if c.generation == generation:
                if c.state is State.CLOSED:
                    code = 1
                    if outcome is Outcome.FAILURE:
                        c.failures += 1
                        if c.failures >= rules.failure_threshold:
                            reason = f"{c.failures} consecutive failures"
                            moved = self._move(c, State.OPEN, now)
                    elif outcome is Outcome.SUCCESS:
                        c.failures = 0
                    c.update_hot()
                elif c.state is State.HALF_OPEN and probe_seq == c.probe_seq:
                    code = 1
                    if outcome is Outcome.FAILURE:
                        reason = "probe failed"
                        moved = self._move(c, State.OPEN, now)
                    elif outcome is Outcome.SUCCESS:
                        c.successes += 1
                        c.probe_until_ms = 0
                        if c.successes >= rules.success_threshold:
                            reason = f"{c.successes} probe successes"
                            moved = self._move(c, State.CLOSED, now)
                    else:
                        c.probe_until_ms = 0
            return self._reply(code, c, cfg, now, moved, reason)

    def control(self, key: str, cfg: BreakerConfig, target: State, reason: str) -> Reply:
        with self._lock:
            c = self._get(key)
            now = self._clock()
            moved = self._move(c, target, now)
            return self._reply(1, c, cfg, now, moved, reason, store_rules=False)

    def configure(self, key: str, rules: SharedRules) -> SharedRules | None:
        """Store ``rules`` with the circuit; returns the previous ones (None if none)."""
        with self._lock:
            c = self._get(key)
            previous, c.rules = c.rules, rules
            return previous

    def rules(self, key: str) -> SharedRules | None:
        circuit = self._circuits.get(key)
        return circuit.rules if circuit is not None else None

    def read(self, key: str) -> dict[str, int] | None:
        """The circuit's fields (the Redis hash's names) and the clock, None if unknown."""
        with self._lock:
            c = self._circuits.get(key)
            if c is None:
                return None
            fields = {
                "st": int(c.state),
                "g": c.generation,
                "f": c.failures,
                "s": c.successes,
                "oa": c.opened_at_ms,
                "pu": c.probe_until_ms,
                "ps": c.probe_seq,
                "ca": c.changed_at_ms,
                "now": self._clock(),
            }
            if c.rules is not None:
                fields["cft"], fields["cst"], fields["ccd"] = c.rules
            return fields
