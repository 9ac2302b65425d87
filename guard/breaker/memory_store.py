"""Per-process store: circuits of one process (in-memory breakers, and the fallback while Redis
is unreachable), each decision one run of the state machine (machine.py) under a lock. A success
in CLOSED with no failures and no window takes no lock: it answers ``Circuit.hot_reply``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from guard.breaker import machine
from guard.breaker.machine import Circuit
from guard.breaker.state import MAX_GENERATION, BreakerConfig, Outcome, Reply, SharedRules, State
from guard.breaker.stored import int_in

_SUCCESS = Outcome.SUCCESS


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class MemoryStore:
    """Circuits of one process; every method is one atomic decision. ``clock``: milliseconds."""

    def __init__(self, clock: Callable[[], int] = monotonic_ms) -> None:
        self._lock = threading.Lock()
        self._circuits: dict[str, Circuit] = {}
        self._clock = clock
        # Keys whose stored rules judge slow calls: their breakers time every call (the others
        # skip the clock, a sizeable part of an in-memory call).
        self.timed: set[str] = set()

    def seed(
        self, key: str, state: State, generation: int, open_remaining_ms: int, cooldown_ms: int
    ) -> None:
        """Start a circuit, unless known, from the last state seen in Redis; an open one stays
        open ``open_remaining_ms`` of its ``cooldown_ms``."""
        with self._lock:
            if key in self._circuits:
                return
            # Only values the breaker could have stored (stored.py): the seed may come from a
            # state restored from PostgreSQL.
            generation = int_in(generation, 0, MAX_GENERATION) or 0
            circuit = Circuit(state=state, generation=generation)
            if state in (State.OPEN, State.FORCED_OPEN, State.HALF_OPEN):
                # HALF_OPEN elsewhere: stay careful and wait out a cooldown from here.
                circuit.state = State.FORCED_OPEN if state is State.FORCED_OPEN else State.OPEN
            if circuit.state is State.OPEN:
                # as if opened that much earlier: the cooldown then ends when the rest does (a
                # whole one for HALF_OPEN elsewhere, whose probe this process knows nothing of)
                remaining = cooldown_ms if state is State.HALF_OPEN else max(0, open_remaining_ms)
                circuit.opened_at_ms = self._clock() + remaining - cooldown_ms
            circuit.update_hot()
            self._circuits[key] = circuit

    def forget(self) -> None:
        """Drop every circuit (Redis is the truth again)."""
        with self._lock:
            self._circuits.clear()
            self.timed.clear()

    def _get(self, key: str) -> Circuit:
        circuit = self._circuits.get(key)
        if circuit is None:
            circuit = self._circuits[key] = Circuit()
            circuit.update_hot()
        return circuit

    def _rules(
        self, key: str, circuit: Circuit, cfg: BreakerConfig, store: bool = True
    ) -> SharedRules:
        """The stored rules; without any, the caller's (stored unless ``store`` is False: a
        manual action does not make its caller the circuit's first writer, as in Redis)."""
        rules = circuit.rules
        if rules is None:
            rules = cfg.shared_rules
            if store:
                self._store_rules(key, circuit, rules)
        return rules

    def _store_rules(self, key: str, circuit: Circuit, rules: SharedRules) -> None:
        circuit.rules = rules
        circuit.update_hot()
        if rules.slow_call_ms:
            self.timed.add(key)
        else:
            self.timed.discard(key)

    def acquire(self, key: str, cfg: BreakerConfig) -> Reply:
        with self._lock:
            circuit = self._get(key)
            rules = self._rules(key, circuit, cfg)
            return machine.acquire(circuit, rules, cfg.probe_lease_ms, self._clock())

    def record(
        self,
        key: str,
        cfg: BreakerConfig,
        generation: int,
        outcome: Outcome,
        probe_seq: int,
        duration_ms: int = 0,
    ) -> Reply:
        circuit = self._circuits.get(key)
        if outcome is _SUCCESS and circuit is not None:
            hot = circuit.hot_reply
            if hot is not None and hot.generation == generation:
                return hot  # as in the Lua script: nothing changes, the reply is constant
        with self._lock:
            circuit = self._circuits.get(key) or self._get(key)
            rules = circuit.rules or self._rules(key, circuit, cfg)
            now = self._clock()
            return machine.record(circuit, rules, generation, outcome, probe_seq, duration_ms, now)

    def control(self, key: str, cfg: BreakerConfig, target: State, reason: str) -> Reply:
        with self._lock:
            circuit = self._get(key)
            rules = self._rules(key, circuit, cfg, store=False)
            return machine.control(circuit, rules, target, reason, self._clock())

    def configure(
        self, key: str, rules: SharedRules, reason: str = "configure"
    ) -> tuple[SharedRules | None, Reply]:
        """Store ``rules``; the previous ones (None if none) and the reply of the change."""
        with self._lock:
            circuit = self._get(key)
            previous = circuit.rules
            reply = machine.configure(circuit, rules, reason, self._clock())
            self._store_rules(key, circuit, rules)
            return previous, reply

    def rules(self, key: str) -> SharedRules | None:
        circuit = self._circuits.get(key)
        return circuit.rules if circuit is not None else None

    def read(self, key: str) -> dict[str, str] | None:
        """The circuit as the scripts keep its hash and the clock (``now``); None if unknown."""
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None:
                return None
            return {**circuit.as_hash(), "now": str(self._clock())}
