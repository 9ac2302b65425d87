"""The Lua scripts of docs/breaker-protocol.md, read from scripts/ with their constants."""

from __future__ import annotations

from importlib.resources import files

from guard.breaker import state

EVENTS_KEPT = 50

# Reply code of ACQUIRE/RECORD for a circuit that has no state in Redis (see the docstring).
UNKNOWN_CODE = 9


def hash_key(key: str) -> str:
    return f"guard:breaker:{{{key}}}"


def events_key(key: str) -> str:
    return f"guard:breaker:{{{key}}}:events"


# The bounds of a stored value (state.py), written into every script. Longer names first: a
# name that is the prefix of another must not replace part of it.
_CONSTANTS = {
    "EVENTS_KEPT_LAST": EVENTS_KEPT - 1,
    "UNKNOWN_CODE": UNKNOWN_CODE,
    "MAX_GENERATION": state.MAX_GENERATION,
    "MAX_COUNT_WINDOW": state.MAX_COUNT_WINDOW,
    "MAX_TIME_WINDOW": state.MAX_TIME_WINDOW_SECONDS,
    "MAX_COUNT": state.MAX_COUNT,
    "MAX_TIME_MS": state.MAX_TIME_MS,
    "MAX_MINIMUM_CALLS": state.MAX_MINIMUM_CALLS,
    "MAX_SLOW_CALL_MS": state.MAX_SLOW_CALL_MS,
    "MAX_GROWTH_PERCENT": state.MAX_COOLDOWN_GROWTH * 100,
}


def _with_constants(source: str) -> str:
    for name, value in _CONSTANTS.items():
        source = source.replace(name, str(value))
    return source


def _script(name: str) -> str:
    """A script of scripts/, the very file other languages' clients load."""
    return (files(__package__) / "scripts" / f"{name}.lua").read_text(encoding="utf-8")


# A circuit's hash and the clock of the node that holds it, in one round trip (read.lua).
READ = _script("read")
# Redis TIME in ms, the clock every decision uses (redis_clock.lua).
REDIS_CLOCK = _script("redis_clock")


def scripts(clock: str = REDIS_CLOCK) -> tuple[str, str, str, str, str]:
    """The ACQUIRE, RECORD, CONTROL, SEED and CONFIGURE scripts: prelude.lua and each one's file
    (record_fast.lua before the prelude). ``clock`` defines ``now_ms()``: Redis ``TIME``, or
    for the differential test a clock it can step."""
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
