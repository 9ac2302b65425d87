"""Lua scripts run by Redis: one script, one round trip, per breaker decision.

Each circuit is one hash ``guard:breaker:{KEY}`` plus a capped list
``guard:breaker:{KEY}:events`` of the last transitions. The hash's fields, and the bounds of the
values each may hold, are defined once in ``codec.py`` (which also decodes the hash for Python);
the scripts spell the same names, and ``tests/breaker/test_breaker_codec.py`` checks that they do.

The failure-rate window lives in the same hash (so it is evicted, and restored, with the
state): totals, an epoch and one field ``w<i>`` per slot. A count slot holds
``epoch * 4 + code`` (code: 1 failed, 2 slow, 3 both, 0 neither); a time bucket holds
``epoch:second:calls:failures:slow``. A slot counts only if it carries the current epoch (and, for
a bucket, a second still inside the window), so emptying the window is one epoch bump, never a
walk over its slots; recording a call changes O(1) fields (a time window also subtracts the
buckets whose second has left it, at most one per elapsed second).

Both names carry the same hash tag, so a script touching both runs on one Redis Cluster node.
Time always comes from Redis ``TIME`` (allowed in writing scripts since Redis 5 replicates
scripts by effects), so processes with skewed clocks agree on when a cooldown ends. Redis's own
clock may jump (a stepped clock, a failover to a node set differently): an OPEN circuit opened
"later" than now is repaired like a bad value (``load``), so that the cooldown it waits is never
longer than its configured one, measured from the decision that saw the jump; a reply's
open-until is bounded the same way.

A circuit without state in Redis (never used, or evicted by a Redis under ``maxmemory``) is
never silently created CLOSED by a decision: ``ACQUIRE`` and ``RECORD`` answer ``UNKNOWN``
(code 9) and write nothing, and the caller re-creates it with ``SEED`` (from the state
PostgreSQL recorded, or CLOSED with the generation it last knew for a new circuit) and asks
again. A missing hash costs nothing on the hot path: the scripts read the hash anyway. Only a
manual action (``CONTROL``) creates a missing circuit itself, since it sets the state.

The rules are stored by the first script that finds none (the caller's values, "first writer
wins") or by ``guard breaker configure``; from then on every decision uses the stored values,
whatever the calling process was configured with, so processes configured differently still
agree on one circuit. The success hot path of ``RECORD`` needs no rule beyond "no window": a
circuit with a window records every call, in the same single script.

Every decision script takes the caller's rules as one argument (fewer arguments are cheaper for
Redis to parse on every call), eleven numbers joined by commas: failure threshold, success
threshold, cooldown ms, window type, size, minimum calls, failure rate %, slow-call ms,
slow-call rate %, cooldown growth % and maximum cooldown ms (``RULES_ARGC``; ``CONFIGURE`` takes
them as eleven arguments).

The growing cooldown (opt-in, ``ccg`` > 0): a failed probe stores in ``oc`` the cooldown of the
next opening, the present one times ``ccg`` %, at most ``ccm``; closing sets it back to 0 (the
plain cooldown). Statistics: ``lf`` is set by every counted failure, ``cl`` by every move to
CLOSED from another state.
"""

from __future__ import annotations

from importlib.resources import files

from guard.breaker.state import MAX_COOLDOWN_GROWTH, MAX_COUNT_WINDOW, MAX_TIME_WINDOW_SECONDS
from guard.breaker.stored import (
    MAX_COUNT,
    MAX_GENERATION,
    MAX_MINIMUM_CALLS,
    MAX_SLOW_CALL_MS,
    MAX_TIME_MS,
)

EVENTS_KEPT = 50

# Reply code of ACQUIRE/RECORD for a circuit that has no state in Redis (see the docstring).
UNKNOWN_CODE = 9

# The caller's rules: the eleven values of ``SharedRules`` as the scripts take them.
RULES_ARGC = 11


def hash_key(key: str) -> str:
    return f"guard:breaker:{{{key}}}"


def events_key(key: str) -> str:
    return f"guard:breaker:{{{key}}}:events"


def key_from_hash_key(redis_key: str) -> str | None:
    prefix, suffix = "guard:breaker:{", "}"
    if redis_key.startswith(prefix) and redis_key.endswith(suffix):
        return redis_key[len(prefix) : -len(suffix)]
    return None


# The bounds of a stored value (stored.py), written into every script. Longer names first: a
# name that is the prefix of another must not replace part of it.
_CONSTANTS = {
    "EVENTS_KEPT_LAST": EVENTS_KEPT - 1,
    "UNKNOWN_CODE": UNKNOWN_CODE,
    "MAX_GENERATION": MAX_GENERATION,
    "MAX_COUNT_WINDOW": MAX_COUNT_WINDOW,
    "MAX_TIME_WINDOW": MAX_TIME_WINDOW_SECONDS,
    "MAX_COUNT": MAX_COUNT,
    "MAX_TIME_MS": MAX_TIME_MS,
    "MAX_MINIMUM_CALLS": MAX_MINIMUM_CALLS,
    "MAX_SLOW_CALL_MS": MAX_SLOW_CALL_MS,
    "MAX_GROWTH_PERCENT": MAX_COOLDOWN_GROWTH * 100,
}


def _with_constants(source: str) -> str:
    for name, value in _CONSTANTS.items():
        source = source.replace(name, str(value))
    return source


def _script(name: str) -> str:
    """A script of scripts/ as it is kept there: read from the package, so other languages'
    clients (docs/breaker-protocol.md) load the very same files."""
    return (files(__package__) / "scripts" / f"{name}.lua").read_text(encoding="utf-8")


# A circuit's hash and the clock of the node that holds it, in one round trip (read.lua).
READ = _script("read")
# Redis TIME in ms, the clock every decision uses (redis_clock.lua).
REDIS_CLOCK = _script("redis_clock")


def scripts(clock: str = REDIS_CLOCK) -> tuple[str, str, str, str, str]:
    """The ACQUIRE, RECORD, CONTROL, SEED and CONFIGURE scripts, assembled from scripts/: each
    decision script is prelude.lua and its own file (RECORD's hot path, record_fast.lua, runs
    before the prelude). ``clock`` defines ``now_ms()``; production always uses Redis ``TIME``.
    The differential test (tests/breaker) substitutes a clock it can step, so that the same
    decision code can be compared with the memory store's."""
    prelude = _script("prelude")
    sources = (
        prelude + _script("acquire"),
        _script("record_fast") + prelude + _script("record"),
        prelude + _script("control"),
        _script("seed"),
        prelude + _script("configure"),
    )
    return tuple(  # type: ignore[return-value]
        _with_constants(source).replace("CLOCK_FUNCTION", clock) for source in sources
    )


ACQUIRE, RECORD, CONTROL, SEED, CONFIGURE = scripts()
