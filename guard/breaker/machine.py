"""The circuit's state machine in Python, ``admit`` and ``record`` as acquire.lua and record.lua
(the differential test runs both side by side), and ``MemoryStore``: the
circuits of one process, each decision one run of the machine under a lock.

The hot path (a success in CLOSED with no failures and no window) changes nothing and takes no
lock: ``hot_reply`` is kept set to the constant reply of the current generation in that state,
else None, so the store answers it with one attribute read (atomic: its linearisation point).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from guard.breaker import codec
from guard.breaker.codec import int_in
from guard.breaker.state import MAX_GENERATION, BreakerConfig, Outcome, Reply, SharedRules, State

if TYPE_CHECKING:
    from guard.breaker.redis_store import CircuitArgs

# Enum members as module constants: ``State.CLOSED`` is a class attribute lookup costing more
# than the whole hot path's comparison.
_CLOSED, _OPEN, _HALF_OPEN = State.CLOSED, State.OPEN, State.HALF_OPEN
_FORCED_OPEN = State.FORCED_OPEN
_FAILURE, _SUCCESS, _IGNORED = Outcome.FAILURE, Outcome.SUCCESS, Outcome.IGNORED
_FORGETS_COOLDOWN = (State.CLOSED, State.FORCED_CLOSED, State.DISABLED)
_REJECTING = (State.OPEN, State.FORCED_OPEN)
# ``Reply``'s own constructor is a Python function around this one.
_new_reply = tuple.__new__

# What a transition leaves in the reply: the state it left and the counts that caused it.
Moved = tuple[int, int, int]
# A state's answer: the reply code, the reason of a transition, the transition (None: none).
Decision = tuple[int, str, Moved | None]
_NOT_COUNTED: Decision = (0, "", None)
_ADMITTED: Decision = (1, "", None)
Rules = SharedRules


@dataclass(slots=True)
class Circuit:
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
    rules: SharedRules | None = None  # stored by the circuit's first writer, as in Redis
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

    def update_hot(self) -> None:
        """Call after every change of state, failures, generation or rules."""
        if self.state is _CLOSED and self.failures == 0:
            quiet = self.quiet_reply
            if quiet is None or quiet.generation != self.generation:
                quiet = Reply(1, _CLOSED, self.generation, 0, 0, 0, 0, -1, 0, "")
                self.quiet_reply = quiet
            rules = self.rules
            self.hot_reply = quiet if rules is None or not rules.has_window else None
        else:
            self.quiet_reply = self.hot_reply = None

    def move(self, to: State, now: int, rules: SharedRules) -> Moved:
        """The scripts' ``move``: a new generation in state ``to``."""
        previous = (int(self.state), self.failures, self.successes)
        # a failed probe grows the cooldown, closing forgets it
        if to is _OPEN and self.state is _HALF_OPEN:
            self.open_cooldown_ms = rules.grown_cooldown_ms(self.open_cooldown_ms)
        elif to in _FORGETS_COOLDOWN:
            self.open_cooldown_ms = 0
        if to is _CLOSED and self.state is not _CLOSED:
            self.closed_at_ms = now
        self.state = to
        self.generation += 1
        self.probe_until_ms = 0
        self.changed_at_ms = now
        if to in _REJECTING:
            self.opened_at_ms = now
            self.successes = 0
        elif to is _HALF_OPEN:
            self.failures = self.successes = 0
        else:
            self.failures = self.successes = self.opened_at_ms = 0
        if rules.window_type:
            self.reset_window()
        self.update_hot()
        return previous

    def reply(self, rules: SharedRules, now: int, decision: Decision) -> Reply:
        open_until = 0
        if self.state is _OPEN:
            grown = self.open_cooldown_ms
            cooldown = rules.open_cooldown_ms(grown) if grown else rules.cooldown_ms
            open_until = self.opened_at_ms + cooldown
        # The reply of a transition carries the counts that caused it (for the event record).
        code, reason, moved = decision
        if moved is None:
            moved = (-1, self.failures, self.successes)
        from_state, failures, successes = moved
        return _new_reply(
            Reply,
            (
                code,
                self.state,
                self.generation,
                failures,
                successes,
                open_until,
                now,
                from_state,
                self.probe_seq,
                reason,
            ),
        )

    # ------------------------------------------------------------------ the failure-rate window
    def reset_window(self) -> None:
        """A new epoch: no slot counts any more (the slots themselves are left, as in Redis)."""
        self.window_epoch += 1
        self.window_calls = self.window_failures = self.window_slow = self.window_pos = 0

    def record_in_window(self, rules: SharedRules, failed: bool, slow: bool, now: int) -> str:
        """One call of CLOSED into the window; the reason to open, or "" (as the scripts)."""
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

    def as_hash(self) -> dict[str, str]:
        """The circuit as the scripts keep its hash (window slots included), all as text."""
        window = (self.window_epoch, self.window_calls, self.window_failures, self.window_slow)
        fields: dict[str, object] = {
            codec.STATE: int(self.state),
            codec.GENERATION: self.generation,
            codec.FAILURES: self.failures,
            codec.SUCCESSES: self.successes,
            codec.OPENED_AT: self.opened_at_ms,
            codec.PROBE_UNTIL: self.probe_until_ms,
            codec.PROBE_SEQ: self.probe_seq,
            codec.CHANGED_AT: self.changed_at_ms,
            codec.OPEN_COOLDOWN: self.open_cooldown_ms,
            codec.LAST_FAILURE_AT: self.last_failure_at_ms,
            codec.CLOSED_AT: self.closed_at_ms,
            **dict(zip(codec.WINDOW_FIELDS, (*window, self.window_pos), strict=True)),
        }
        if self.rules is not None:
            fields.update(zip(codec.RULE_FIELDS, codec.rules_values(self.rules), strict=True))
        for index, slot in self.slots.items():
            text = ":".join(map(str, slot)) if isinstance(slot, tuple) else slot
            fields[f"{codec.SLOT_PREFIX}{index}"] = text
        return {name: str(value) for name, value in fields.items()}


# ---------------------------------------------------------------------------- the decisions
# As acquire.lua and record.lua: FORCED_CLOSED and DISABLED admit every call and count nothing.


def admit(c: Circuit, now: int, rules: Rules, lease_ms: int) -> Decision:
    """OPEN rejects until its cooldown ends, then becomes HALF_OPEN, which hands out one probe
    lease at a time; FORCED_OPEN rejects."""
    if c.state is _CLOSED:
        return _ADMITTED  # first: a decision in CLOSED is the common one
    code, reason, moved = 1, "", None
    if c.state is _OPEN:
        if now < c.opened_at_ms + rules.open_cooldown_ms(c.open_cooldown_ms):
            return _NOT_COUNTED
        reason, moved = "cooldown elapsed", c.move(_HALF_OPEN, now, rules)
    if c.state is _HALF_OPEN:
        if c.probe_until_ms > now:
            return _NOT_COUNTED
        c.probe_seq += 1
        c.probe_until_ms = now + lease_ms
        code = 2
    elif c.state is _FORCED_OPEN:
        code = 0
    return code, reason, moved


def record(c: Circuit, outcome: Outcome, seq: int, ms: int, now: int, rules: Rules) -> Decision:
    """CLOSED counts failures in a row (and in the window, if any) and opens at the threshold;
    HALF_OPEN counts its probe's outcome: a failure reopens, ``success_threshold`` close."""
    if c.state is _CLOSED:
        reason = ""
        if outcome is _FAILURE:
            c.failures += 1
            c.last_failure_at_ms = now
            if c.failures >= rules.failure_threshold:
                reason = f"{c.failures} consecutive failures"
        elif outcome is _SUCCESS:
            c.failures = 0
        # the failure-rate window, beside the consecutive rule (ignored outcomes: neither way)
        if not reason and rules.has_window and outcome is not _IGNORED:
            slow = 0 < rules.slow_call_ms < ms
            reason = c.record_in_window(rules, outcome is _FAILURE, slow, now)
        if reason:
            return 1, reason, c.move(_OPEN, now, rules)
        c.update_hot()
        return 1, "", None
    if c.state is not _HALF_OPEN or seq != c.probe_seq:
        return _NOT_COUNTED
    if outcome is _FAILURE:
        c.last_failure_at_ms = now
        return 1, "probe failed", c.move(_OPEN, now, rules)
    c.probe_until_ms = 0
    if outcome is _SUCCESS:
        c.successes += 1
        if c.successes >= rules.success_threshold:
            return 1, f"{c.successes} probe successes", c.move(_CLOSED, now, rules)
    return 1, "", None


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class MemoryStore:
    """Circuits of one process; every method is one atomic decision. ``clock``: milliseconds."""

    def __init__(self, clock: Callable[[], int] = monotonic_ms) -> None:
        self._lock = threading.Lock()
        self._circuits: dict[str, Circuit] = {}
        self._clock = clock
        # Keys whose stored rules judge slow calls: only their breakers read the clock.
        self.timed: set[str] = set()

    def seed(
        self, key: str, state: State, generation: int, open_remaining_ms: int, cooldown_ms: int
    ) -> None:
        """Start a circuit, unless known, from the last state seen in Redis; an open one stays
        open ``open_remaining_ms`` of its ``cooldown_ms``."""
        with self._lock:
            if key in self._circuits:
                return
            # the seed may come from PostgreSQL: only values the breaker could have stored
            circuit = Circuit(state=state, generation=int_in(generation, 0, MAX_GENERATION) or 0)
            if state in (State.OPEN, State.FORCED_OPEN, State.HALF_OPEN):
                # HALF_OPEN elsewhere: stay careful and wait out a cooldown from here.
                circuit.state = State.FORCED_OPEN if state is State.FORCED_OPEN else State.OPEN
            if circuit.state is State.OPEN:
                # as if opened that much earlier (a whole cooldown for HALF_OPEN elsewhere)
                remaining = cooldown_ms if state is State.HALF_OPEN else max(0, open_remaining_ms)
                circuit.opened_at_ms = self._clock() + remaining - cooldown_ms
            circuit.update_hot()
            self._circuits[key] = circuit

    def forget(self) -> None:
        """Drop every circuit (Redis is the truth again)."""
        with self._lock:
            self._circuits.clear()
            self.timed.clear()

    def _get(self, key: str, cfg: BreakerConfig | None = None) -> tuple[Circuit, SharedRules]:
        """The circuit and its rules; without stored ones ``cfg``'s, stored unless ``cfg`` is
        None (a manual action does not make its caller the first writer, as in Redis)."""
        circuit = self._circuits.get(key)
        if circuit is None:
            circuit = self._circuits[key] = Circuit()
            circuit.update_hot()
        rules = circuit.rules
        if rules is None and cfg is not None:
            rules = cfg.shared_rules
            self._store_rules(key, circuit, rules)
        return circuit, rules or SharedRules(0, 0, 0)

    def _store_rules(self, key: str, circuit: Circuit, rules: SharedRules) -> None:
        circuit.rules = rules
        circuit.update_hot()
        if rules.slow_call_ms:
            self.timed.add(key)
        else:
            self.timed.discard(key)

    def acquire(self, key: str, cfg: BreakerConfig) -> Reply:
        with self._lock:
            c, rules = self._get(key, cfg)
            now = self._clock()
            return c.reply(rules, now, admit(c, now, rules, cfg.probe_lease_ms))

    def record(
        self, key: str, cfg: BreakerConfig, gen: int, outcome: Outcome, seq: int, ms: int = 0
    ) -> Reply:
        """An outcome; counted only for the generation (and probe) it was admitted in."""
        circuit = self._circuits.get(key)
        if outcome is _SUCCESS and circuit is not None:
            hot = circuit.hot_reply
            if hot is not None and hot.generation == gen:
                return hot  # as in the Lua script: nothing changes, the reply is constant
        with self._lock:
            c, rules = self._get(key, cfg)
            now = self._clock()
            if c.generation != gen:
                return c.reply(rules, now, _NOT_COUNTED)
            decision = record(c, outcome, seq, ms, now, rules)
            quiet = c.quiet_reply
            if quiet is not None and decision[0] == 1 and decision[2] is None:
                return quiet  # CLOSED without failures: the scripts' constant ``quiet`` reply
            return c.reply(rules, now, decision)

    # ``control``, ``configure``, ``rules`` and ``read_with_time`` take ``RedisStore``'s
    # arguments, so that the breaker talks to either store alike; the actor, known generation
    # and ``on_missing`` are unused here (nothing is recorded, nothing can be missing).
    def control(self, args: CircuitArgs, target: State, reason: str, *_: object) -> Reply:
        with self._lock:
            c, rules = self._get(args.key)
            rules = c.rules or args.own_rules
            now = self._clock()
            return c.reply(rules, now, (1, reason, c.move(target, now, rules)))

    def configure(
        self, args: CircuitArgs, rules: SharedRules, reason: str = "configure", *_: object
    ) -> tuple[SharedRules | None, Reply]:
        """New rules: a new generation, the state and counters unchanged (as ``CONFIGURE``);
        returns the previous ones (None if none) and the reply."""
        key = args.key
        with self._lock:
            c, _ = self._get(key)
            previous, now = c.rules, self._clock()
            if (previous or SharedRules(0, 0, 0)).window_rules != rules.window_rules:
                c.reset_window()
            c.generation += 1
            c.changed_at_ms = now
            self._store_rules(key, c, rules)
            return previous, c.reply(
                rules, now, (1, reason, (int(c.state), c.failures, c.successes))
            )

    def rules(self, key: str) -> SharedRules | None:
        circuit = self._circuits.get(key)
        return circuit.rules if circuit is not None else None

    def read_with_time(self, key: str) -> tuple[dict[str, str], int]:
        """The circuit as the scripts keep its hash ({} if unknown) and the clock (ms)."""
        with self._lock:
            circuit = self._circuits.get(key)
            return (circuit.as_hash(), self._clock()) if circuit else ({}, 0)
