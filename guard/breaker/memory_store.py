"""Per-process store with exactly the rules of the Lua scripts (in-memory breakers, and the
fallback while Redis is unreachable); a lock makes each decision atomic.

The hot path (a success in CLOSED with no failures and no window) changes nothing and takes no
lock: it reads ``hot_reply``, which every locked change keeps set to the constant reply of the
current generation in that state, else None. One attribute read is atomic, so it is the
decision's linearisation point; reading state, failures and generation one by one could mix two
generations. The window is kept as the scripts keep it in the hash; the differential test
compares both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from guard.breaker import codec
from guard.breaker.state import BreakerConfig, Outcome, Reply, SharedRules, State
from guard.breaker.stored import MAX_GENERATION, int_in

# Enum members as module constants: ``State.CLOSED`` is a class attribute lookup costing more
# than the whole hot path's comparison.
_CLOSED, _OPEN, _HALF_OPEN = State.CLOSED, State.OPEN, State.HALF_OPEN
_FORCED_OPEN = State.FORCED_OPEN
_FAILURE, _SUCCESS, _IGNORED = Outcome.FAILURE, Outcome.SUCCESS, Outcome.IGNORED
_FORGETS_COOLDOWN = (State.CLOSED, State.FORCED_CLOSED, State.DISABLED)
_REJECTING = (State.OPEN, State.FORCED_OPEN)


@dataclass(slots=True)
class _Circuit:
    state: State = _CLOSED
    generation: int = 0
    failures: int = 0
    successes: int = 0
    opened_at_ms: int = 0
    probe_until_ms: int = 0
    probe_seq: int = 0
    hot_reply: Reply | None = None  # set only while CLOSED with 0 failures and no window
    # The constant reply while CLOSED with 0 failures (the scripts' ``quiet``), window or not.
    quiet_reply: Reply | None = None
    # The circuit's rules, stored by its first writer as in Redis (None until then).
    rules: SharedRules | None = None
    changed_at_ms: int = 0
    # Statistics (0: none yet) and the grown cooldown of the present opening (0: the plain one).
    last_failure_at_ms: int = 0
    closed_at_ms: int = 0
    open_cooldown_ms: int = 0
    # The failure-rate window (the scripts' we, wn, wf, wsl, wp and w<i> fields).
    window_epoch: int = 0
    window_calls: int = 0
    window_failures: int = 0
    window_slow: int = 0
    window_pos: int = 0  # count: next slot; time: newest second
    # count: slot -> epoch * 4 + code; time: slot -> (epoch, second, calls, failures, slow)
    slots: dict[int, int | tuple[int, int, int, int, int]] = field(default_factory=dict)

    def rules_for(self, cfg: BreakerConfig, store: bool = True) -> SharedRules:
        """The stored rules; without any, the caller's (stored unless ``store`` is False: a
        manual action does not make its caller the circuit's first writer, as in Redis)."""
        rules = self.rules
        if rules is None:
            rules = cfg.shared_rules
            if store:
                self.rules = rules
                self.update_hot()
        return rules

    def update_hot(self) -> None:
        """Call after every change of state, failures, generation or rules (under the lock)."""
        if self.state is _CLOSED and self.failures == 0:
            quiet = self.quiet_reply
            if quiet is None or quiet.generation != self.generation:
                quiet = Reply(1, _CLOSED, self.generation, 0, 0, 0, 0, -1, 0, "")
                self.quiet_reply = quiet
            rules = self.rules
            self.hot_reply = quiet if rules is None or not rules.has_window else None
        else:
            self.quiet_reply = self.hot_reply = None

    def reset_window(self) -> None:
        """A new epoch: no slot counts any more (the slots themselves are left, as in Redis)."""
        self.window_epoch += 1
        self.window_calls = self.window_failures = self.window_slow = self.window_pos = 0

    def record_in_window(self, rules: SharedRules, failed: bool, slow: bool, now: int) -> str:
        """One call of CLOSED into the window; the reason to open, or "" (``record_in_window``
        of the scripts, step for step)."""
        code = (1 if failed else 0) + (2 if slow else 0)
        if rules.window_type == "count":
            self._count_slot(rules.window_size, code)
        else:
            self._time_bucket(rules.window_size, code, now // 1000)
        self.window_calls += 1
        self.window_failures += code % 2
        self.window_slow += code // 2
        return self._judge(rules)

    def _count_slot(self, size: int, code: int) -> None:
        index = self.window_pos % size
        old = self.slots.get(index)
        if isinstance(old, int) and old // 4 == self.window_epoch:
            was = old % 4
            self.window_calls -= 1
            self.window_failures -= was % 2
            self.window_slow -= was // 2
        self.window_pos = (index + 1) % size
        self.slots[index] = self.window_epoch * 4 + code

    def _time_bucket(self, size: int, code: int, second: int) -> None:
        epoch, head = self.window_epoch, self.window_pos
        calls = failures = slow = 0
        if head == 0 or second - head >= size:
            # nothing recorded yet, or everything recorded has left the window
            self.window_calls = self.window_failures = self.window_slow = 0
            head = second
        elif second > head:
            # the seconds head+1 .. second enter the window; the buckets they reuse leave it
            for entering in range(head + 1, second + 1):
                bucket = self.slots.get(entering % size)
                if isinstance(bucket, tuple) and bucket[:2] == (epoch, entering - size):
                    self.window_calls -= bucket[2]
                    self.window_failures -= bucket[3]
                    self.window_slow -= bucket[4]
            head = second
        else:
            # the newest second (or a clock that went back): add to its bucket
            bucket = self.slots.get(head % size)
            if isinstance(bucket, tuple) and bucket[:2] == (epoch, head):
                calls, failures, slow = bucket[2:]
        self.window_pos = head
        self.slots[head % size] = (epoch, head, calls + 1, failures + code % 2, slow + code // 2)

    def _judge(self, rules: SharedRules) -> str:
        calls, failures, slow = self.window_calls, self.window_failures, self.window_slow
        if calls < rules.effective_minimum_calls:
            return ""
        if rules.failure_rate_threshold and failures * 100 >= rules.failure_rate_threshold * calls:
            return f"{failures} of the last {calls} calls failed ({failures * 100 // calls}%)"
        if rules.slow_call_rate_threshold and slow * 100 >= rules.slow_call_rate_threshold * calls:
            return (
                f"{slow} of the last {calls} calls slower than {rules.slow_call_ms} ms"
                f" ({slow * 100 // calls}%)"
            )
        return ""


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
        # Keys whose stored rules judge slow calls: their breakers time every call (the others
        # skip the clock, which costs a fifth of an in-memory call).
        self.timed: set[str] = set()

    def _rules_changed(self, key: str, rules: SharedRules | None) -> None:
        if rules is not None and rules.slow_call_ms:
            self.timed.add(key)
        else:
            self.timed.discard(key)

    def seed(
        self, key: str, state: State, generation: int, open_remaining_ms: int, cooldown_ms: int
    ) -> None:
        """Start a circuit from the last state seen elsewhere (Redis) unless already known. An
        open one stays open ``open_remaining_ms`` from now; ``cooldown_ms`` is the cooldown
        its decisions here will measure from the opening (the caller's plain one)."""
        with self._lock:
            if key in self._circuits:
                return
            # Only values the breaker could have stored (stored.py): the seed may come from a
            # state restored from PostgreSQL.
            generation = int_in(generation, 0, MAX_GENERATION) or 0
            circuit = _Circuit(state=state, generation=generation)
            if state in (_OPEN, _FORCED_OPEN, _HALF_OPEN):
                # HALF_OPEN elsewhere: stay careful and wait out a cooldown from here.
                circuit.state = _FORCED_OPEN if state is _FORCED_OPEN else _OPEN
            if circuit.state is _OPEN:
                # as if opened that much earlier: the cooldown then ends when the rest does (a
                # whole one for HALF_OPEN elsewhere, whose probe this process knows nothing of)
                remaining = cooldown_ms if state is _HALF_OPEN else max(0, open_remaining_ms)
                circuit.opened_at_ms = self._clock() + remaining - cooldown_ms
            circuit.update_hot()
            self._circuits[key] = circuit

    def forget(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._circuits.clear()
                self.timed.clear()
            else:
                self._circuits.pop(key, None)
                self.timed.discard(key)

    def _get(self, key: str) -> _Circuit:
        circuit = self._circuits.get(key)
        if circuit is None:
            circuit = self._circuits[key] = _Circuit()
            circuit.update_hot()
        return circuit

    def _stored_rules(self, key: str, c: _Circuit, cfg: BreakerConfig) -> SharedRules:
        """``rules_for`` that keeps ``timed`` current when the caller's rules are stored."""
        rules = c.rules
        if rules is None:
            rules = c.rules_for(cfg)
            self._rules_changed(key, rules)
        return rules

    @staticmethod
    def _move(c: _Circuit, to: State, now: int, rules: SharedRules) -> tuple[int, int, int]:
        previous = (int(c.state), c.failures, c.successes)
        # as the scripts' ``move``: a failed probe grows the cooldown, closing forgets it
        if to is _OPEN and c.state is _HALF_OPEN:
            c.open_cooldown_ms = rules.grown_cooldown_ms(c.open_cooldown_ms)
        elif to in _FORGETS_COOLDOWN:
            c.open_cooldown_ms = 0
        if to is _CLOSED and c.state is not _CLOSED:
            c.closed_at_ms = now
        c.state = to
        c.generation += 1
        c.probe_until_ms = 0
        c.changed_at_ms = now
        if to in _REJECTING:
            c.opened_at_ms = now
            c.successes = 0
        elif to is _HALF_OPEN:
            c.failures = c.successes = 0
        else:
            c.failures = c.successes = c.opened_at_ms = 0
        if rules.has_window:
            c.reset_window()
        c.update_hot()
        return previous

    @staticmethod
    def _reply(
        code: int,
        c: _Circuit,
        rules: SharedRules,
        now: int,
        moved: tuple[int, int, int] | None,
        reason: str,
    ) -> Reply:
        cooldown = rules.open_cooldown_ms(c.open_cooldown_ms)
        open_until = c.opened_at_ms + cooldown if c.state is _OPEN else 0
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
            rules = self._stored_rules(key, c, cfg)
            if c.state is _OPEN:
                if now < c.opened_at_ms + rules.open_cooldown_ms(c.open_cooldown_ms):
                    code = 0
                else:
                    reason = "cooldown elapsed"
                    moved = self._move(c, _HALF_OPEN, now, rules)
            if c.state is _HALF_OPEN:
                if c.probe_until_ms > now:
                    code = 0
                else:
                    c.probe_seq += 1
                    c.probe_until_ms = now + cfg.probe_lease_ms
                    code = 2
            elif c.state is _FORCED_OPEN:
                code = 0
            return self._reply(code, c, rules, now, moved, reason)

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
            c = self._get(key)
            now = self._clock()
            code, reason = 0, ""
            moved: tuple[int, int, int] | None = None
            rules = self._stored_rules(key, c, cfg)
            if c.generation == generation:
                if c.state is _CLOSED:
                    code = 1
                    reason = self._closed_outcome(c, rules, outcome, duration_ms, now)
                    if reason:
                        moved = self._move(c, _OPEN, now, rules)
                    else:
                        c.update_hot()
                elif c.state is _HALF_OPEN and probe_seq == c.probe_seq:
                    code = 1
                    if outcome is _FAILURE:
                        c.last_failure_at_ms = now
                        reason = "probe failed"
                        moved = self._move(c, _OPEN, now, rules)
                    elif outcome is _SUCCESS:
                        c.successes += 1
                        c.probe_until_ms = 0
                        if c.successes >= rules.success_threshold:
                            reason = f"{c.successes} probe successes"
                            moved = self._move(c, _CLOSED, now, rules)
                    else:
                        c.probe_until_ms = 0
            quiet = c.quiet_reply
            if code == 1 and moved is None and quiet is not None:
                return quiet  # CLOSED without failures: the scripts' constant ``quiet`` reply
            return self._reply(code, c, rules, now, moved, reason)

    @staticmethod
    def _closed_outcome(
        c: _Circuit, rules: SharedRules, outcome: Outcome, duration_ms: int, now: int
    ) -> str:
        """Count an outcome of CLOSED; the reason to open the circuit, or ""."""
        if outcome is _FAILURE:
            c.failures += 1
            c.last_failure_at_ms = now
            if c.failures >= rules.failure_threshold:
                return f"{c.failures} consecutive failures"
        elif outcome is _SUCCESS:
            c.failures = 0
        # the failure-rate window, beside the consecutive rule (ignored outcomes: neither way)
        if rules.has_window and outcome is not _IGNORED:
            slow = 0 < rules.slow_call_ms < duration_ms
            return c.record_in_window(rules, outcome is _FAILURE, slow, now)
        return ""

    def control(self, key: str, cfg: BreakerConfig, target: State, reason: str) -> Reply:
        with self._lock:
            c = self._get(key)
            now = self._clock()
            rules = c.rules_for(cfg, store=False)
            moved = self._move(c, target, now, rules)
            return self._reply(1, c, rules, now, moved, reason)

    def configure(
        self, key: str, rules: SharedRules, reason: str = "configure"
    ) -> tuple[SharedRules | None, Reply]:
        """Store ``rules`` with the circuit; returns the previous ones (None if none) and the
        reply of the change: a new generation, the state and counters unchanged (as
        ``CONFIGURE`` does). New window rules empty the window."""
        with self._lock:
            c = self._get(key)
            now = self._clock()
            previous, c.rules = c.rules, rules
            before = (previous or SharedRules(0, 0, 0)).window_rules
            if before != rules.window_rules:
                c.reset_window()
            c.generation += 1
            c.changed_at_ms = now
            c.update_hot()
            self._rules_changed(key, rules)
            unchanged = (int(c.state), c.failures, c.successes)
            reply = self._reply(1, c, rules, now, unchanged, reason)
            return previous, reply

    def rules(self, key: str) -> SharedRules | None:
        circuit = self._circuits.get(key)
        return circuit.rules if circuit is not None else None

    def read(self, key: str) -> dict[str, str] | None:
        """The circuit as the scripts keep its hash (window slots included) and the clock
        (``now``), all as text; None if unknown."""
        with self._lock:
            c = self._circuits.get(key)
            if c is None:
                return None
            window = (c.window_epoch, c.window_calls, c.window_failures, c.window_slow)
            fields: dict[str, object] = {
                codec.STATE: int(c.state),
                codec.GENERATION: c.generation,
                codec.FAILURES: c.failures,
                codec.SUCCESSES: c.successes,
                codec.OPENED_AT: c.opened_at_ms,
                codec.PROBE_UNTIL: c.probe_until_ms,
                codec.PROBE_SEQ: c.probe_seq,
                codec.CHANGED_AT: c.changed_at_ms,
                codec.OPEN_COOLDOWN: c.open_cooldown_ms,
                codec.LAST_FAILURE_AT: c.last_failure_at_ms,
                codec.CLOSED_AT: c.closed_at_ms,
                **dict(zip(codec.WINDOW_FIELDS, (*window, c.window_pos), strict=True)),
                "now": self._clock(),
            }
            if c.rules is not None:
                fields.update(zip(codec.RULE_FIELDS, codec.rules_values(c.rules), strict=True))
            for index, slot in c.slots.items():
                text = ":".join(map(str, slot)) if isinstance(slot, tuple) else slot
                fields[f"{codec.SLOT_PREFIX}{index}"] = text
            return {name: str(value) for name, value in fields.items()}
