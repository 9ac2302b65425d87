"""Redis-backed circuit store: the Lua scripts of docs/breaker-protocol.md (read from scripts/
with their constants), one EVALSHA (one round trip) per decision. Clients have short timeouts
and no retries, so that a Redis problem surfaces within milliseconds and the breaker decides per
process instead of stalling the guarded call."""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry

from guard.breaker import state
from guard.breaker.codec import (
    BOUNDS,
    RULE_FIELDS,
    Seed,
    decode_hash,
    new_circuit,
    rules_from_values,
    rules_values,
)
from guard.breaker.state import BreakerConfig, Outcome, Reply, SharedRules, State
from guard.redact import redact_url, remember

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CONNECT_TIMEOUT_SECONDS = 0.05
READ_TIMEOUT_SECONDS = 0.1

# Errors meaning "Redis cannot take this decision now": unreachable, but also answering with an
# error (OOM, BUSY, NOPERM, READONLY …). The breaker then decides per process: an error reply
# must neither escape into the guarded call (the dependency may already have been called) nor
# make the breaker stop protecting. (``NoScriptError`` is handled in ``_eval`` before this.)
REDIS_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.RedisError,
    redis.exceptions.RedisClusterException,
    OSError,
)


class StateMissingError(redis.exceptions.RedisError):
    """Missing from Redis again right after it was re-created: decided per process."""


class UnreadableReplyError(redis.exceptions.RedisError):
    """A script's reply that does not parse: decided per process, like an outage."""


EVENTS_KEPT = 50

# Reply code of a decision on a circuit that has no state in Redis (then seeded and run again).
UNKNOWN_CODE = 9


def hash_key(key: str) -> str:
    return f"guard:breaker:{{{key}}}"


def events_key(key: str) -> str:
    return f"guard:breaker:{{{key}}}:events"


# The bounds written into every script, longest name first (a name that is the prefix of another
# must not replace part of it): a field's highest value as ``codec.BOUNDS`` has it, so that the
# scripts check a stored value as the Python client does.
_CONSTANTS = {
    "EVENTS_KEPT_LAST": EVENTS_KEPT - 1,
    "UNKNOWN_CODE": UNKNOWN_CODE,
    "MAX_GENERATION": BOUNDS["g"][1],
    "MAX_COUNT_WINDOW": BOUNDS["cws"][1],
    "MAX_TIME_WINDOW": state.MAX_TIME_WINDOW_SECONDS,  # bounds ``cws`` of a time window
    "MAX_COUNT": BOUNDS["f"][1],
    "MAX_TIME_MS": BOUNDS["oa"][1],
    "MAX_MINIMUM_CALLS": BOUNDS["cwm"][1],
    "MAX_SLOW_CALL_MS": BOUNDS["csd"][1],
    "MAX_GROWTH_PERCENT": BOUNDS["ccg"][1],
}


def _script(name: str) -> str:
    """A script of scripts/, the very file other languages' clients load."""
    return (files("guard.breaker") / "scripts" / f"{name}.lua").read_text(encoding="utf-8")


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
    for name, value in (*_CONSTANTS.items(), ("CLOCK_FUNCTION", clock)):
        sources = tuple(source.replace(name, str(value)) for source in sources)  # type: ignore[assignment]
    return sources


# What a missing circuit becomes (``stored.seed_for``), given the generation the caller knew.
OnMissing = Callable[[int], Seed]


def mask_url(url: str) -> str:
    """The URL with its password and query values replaced by ``***`` (guard.redact)."""
    remember(url)
    return redact_url(url)


def _split_cluster(url: str) -> tuple[str, bool]:
    cluster = url.startswith(("redis+cluster://", "rediss+cluster://"))
    return (url.replace("+cluster", "", 1) if cluster else url), cluster


def make_client(
    url: str,
    *,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    read_timeout: float = READ_TIMEOUT_SECONDS,
    for_asyncio: bool = False,
) -> Any:
    """A client (``redis+cluster://``: Redis Cluster) that connects on first use."""
    plain, cluster = _split_cluster(url)
    options = {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": read_timeout,
        "retry": AsyncRetry(NoBackoff(), 0) if for_asyncio else Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }
    if for_asyncio:
        kind: Any = redis.asyncio.cluster.RedisCluster if cluster else redis.asyncio.Redis
    else:
        kind = redis.cluster.RedisCluster if cluster else redis.Redis
    return kind.from_url(plain, **options)


@dataclass(frozen=True, slots=True)
class Script:
    source: str
    sha: str

    @classmethod
    def of(cls, source: str) -> Script:
        return cls(source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())


@dataclass(frozen=True, slots=True)
class Scripts:
    acquire: Script
    record: Script
    control: Script
    seed: Script
    configure: Script

    @classmethod
    def build(cls, clock: str = REDIS_CLOCK) -> Scripts:
        return cls(*(Script.of(source) for source in scripts(clock)))


SCRIPTS = Scripts.build()
# A circuit's hash and the clock of the node that holds it, in one round trip (read.lua).
READ = Script.of(_script("read"))


def parse_reply(raw: bytes | str) -> Reply:
    """Parse the scripts' reply (the reason is last: an operator's reason may hold commas)."""
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        fields = text.split(",", 9)
        code, state, *numbers = (int(value) for value in fields[:9])
        return Reply._make((code, State(state), *numbers, fields[9]))
    except (ValueError, TypeError, AttributeError, IndexError) as error:  # UnicodeDecodeError too
        raise UnreadableReplyError(
            f"unreadable reply from the breaker's script ({type(error).__name__})"
        ) from None


# The hot-path replies repeat byte for byte (a quiet circuit's is constant): parsed once.
_parse_bytes = functools.lru_cache(maxsize=4096)(parse_reply)


def parse_reply_cached(raw: Any) -> Reply:
    return _parse_bytes(raw) if raw.__class__ is bytes else parse_reply(raw)


def pack_command(*parts: str | int | bytes, more: int = 0) -> bytes:
    """RESP encoding of one command; ``more``: arguments still to come (``pack_argument``)."""
    chunks = [b"*%d\r\n" % (len(parts) + more)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        chunks.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(chunks)


_ARGUMENTS: dict[int, bytes] = {}


def pack_argument(value: int) -> bytes:
    """RESP encoding of one integer argument (small ones cached: durations in ms repeat)."""
    packed = _ARGUMENTS.get(value)
    if packed is None:
        data = b"%d" % value
        packed = b"$%d\r\n%s\r\n" % (len(data), data)
        if 0 <= value < 100_000:
            _ARGUMENTS[value] = packed
    return packed


@dataclass(frozen=True, slots=True)
class CircuitArgs:
    """Per-circuit script arguments, encoded once."""

    keys: tuple[str, str]
    tail: tuple[str, str, str]  # host, pid, the caller's rules (``rules_values``, joined)
    key: str
    own_rules: SharedRules  # the caller's, for the in-memory store

    @classmethod
    def build(cls, key: str, cfg: BreakerConfig, host: str, pid: int) -> CircuitArgs:
        rules = cfg.shared_rules
        tail = (host, str(pid), ",".join(rules_values(rules)))
        return cls((hash_key(key), events_key(key)), tail, key, rules)

    def acquire_args(self, cfg: BreakerConfig, known_gen: int) -> tuple[str | int, ...]:
        return (cfg.probe_lease_ms, known_gen, *self.tail)

    def record_args(self, generation: int, outcome: Outcome, probe_seq: int) -> tuple[Any, ...]:
        """All arguments but the last, the duration (``RedisStore.decide``'s ``last``)."""
        return (generation, int(outcome), probe_seq, *self.tail)


def _found(reply: Reply, args: CircuitArgs) -> Reply:
    """The reply of a decision run again after seeding: the circuit must be there now."""
    if reply.code == UNKNOWN_CODE:
        raise StateMissingError(f"{args.keys[0]} missing from Redis again after restoring")
    return reply


# redis-py before 5.3 requires ``get_connection(command_name)``; 5.3 deprecates any argument.
_POOL_ARGS = ("EVALSHA",) if tuple(map(int, redis.__version__.split(".")[:2])) < (5, 3) else ()


class RedisStore:
    """Blocking Redis store. Exceptions from ``REDIS_DOWN_ERRORS`` mean "decide without Redis".

    For a plain (non-cluster) client every script skips redis-py's generic command machinery:
    each EVALSHA is packed once and written straight to a pooled connection, which halves the
    client-side cost of a decision. Cluster clients use ``execute_command`` (routed by slot).
    """

    _PACKED_CACHE_LIMIT = 4096

    def __init__(self, client: Any, scripts: Scripts = SCRIPTS) -> None:
        self.client = client
        self.scripts = scripts
        self._pool = client.connection_pool if isinstance(client, redis.Redis) else None
        self._packed: dict[tuple[Any, ...], bytes] = {}

    def _send_raw(self, packed: list[bytes]) -> Any:
        """One packed command on a pooled connection, through redis-py's public connection API."""
        assert self._pool is not None
        pool = self._pool
        conn = pool.get_connection(*_POOL_ARGS)
        try:
            conn.send_packed_command(packed, check_health=False)  # type: ignore[no-untyped-call]
            raw = conn.read_response()
        except redis.exceptions.ResponseError:
            pool.release(conn)  # a Redis error reply (e.g. NOSCRIPT): the connection is fine
            raise
        except BaseException:
            # Timeout or broken socket: the reply may still arrive later, so never reuse it.
            conn.disconnect()  # type: ignore[no-untyped-call]
            pool.release(conn)
            raise
        pool.release(conn)
        return raw

    def _eval(
        self, script: Script, keys: tuple[str, ...], args: Sequence[Any], last: int | None = None
    ) -> Any:
        """One script run, its raw reply. ``last``: a final argument that changes from call to
        call (a duration), appended to the rest of the command, packed once."""
        more = () if last is None else (last,)
        try:
            if self._pool is None:
                command = (script.sha, len(keys), *keys, *args, *more)
                return self.client.execute_command("EVALSHA", *command)
            cache_key = (script.sha, keys[0], *args)
            packed = self._packed.get(cache_key)
            if packed is None:
                if len(self._packed) >= self._PACKED_CACHE_LIMIT:
                    self._packed.clear()
                command = ("EVALSHA", script.sha, len(keys), *keys, *args)
                packed = self._packed[cache_key] = pack_command(*command, more=len(more))
            if last is not None:
                packed += pack_argument(last)
            return self._send_raw([packed])
        except NoScriptError:
            # First use on this server (or after SCRIPT FLUSH / failover): EVAL caches it.
            command = (script.source, len(keys), *keys, *args, *more)
            return self.client.execute_command("EVAL", *command)

    def decide(
        self,
        args: CircuitArgs,
        on_missing: OnMissing,
        script: Script,
        script_args: Sequence[Any],
        known_gen: int,
        last: int | None = None,
    ) -> Reply:
        """One decision script; a circuit Redis lacks is seeded (``on_missing``) and run again."""
        reply = parse_reply_cached(self._eval(script, args.keys, script_args, last))
        if reply.code == UNKNOWN_CODE:
            self.seed(args, on_missing(known_gen))
            reply = _found(
                parse_reply_cached(self._eval(script, args.keys, script_args, last)), args
            )
        return reply

    async def decide_async(
        self,
        client: Any,
        args: CircuitArgs,
        on_missing: OnMissing,
        script: Script,
        script_args: Sequence[Any],
        known_gen: int,
        last: int | None = None,
    ) -> Reply:
        """``decide`` on the event loop, through ``client`` (the loop's ``redis.asyncio`` one)."""
        command = (2, *args.keys, *script_args, *(() if last is None else (last,)))
        try:
            raw = await client.execute_command("EVALSHA", script.sha, *command)
        except NoScriptError:
            raw = await client.execute_command("EVAL", script.source, *command)
        reply = parse_reply_cached(raw)
        if reply.code == UNKNOWN_CODE:
            # rare (an evicted circuit), and ``on_missing`` may read PostgreSQL: in a thread
            request = (args, on_missing, script, script_args, known_gen, last)
            reply = await asyncio.to_thread(self.decide, *request)
        return reply

    def seed(self, args: CircuitArgs, seed: Seed) -> bool:
        """Re-create a missing circuit as ``seed`` says; False if it exists (nothing written)."""
        host, pid, _ = args.tail
        seed_args = (int(seed.state), seed.generation, seed.opened_at_ms, seed.note, host, pid)
        return bool(self._eval(self.scripts.seed, args.keys, seed_args))

    def control(
        self,
        args: CircuitArgs,
        target: State,
        reason: str,
        actor: str,
        known_gen: int,
        on_missing: OnMissing = new_circuit,
    ) -> Reply:
        """A manual action, from the state a circuit Redis lacks really had (``on_missing``)."""
        host, pid, own_rules = args.tail
        control_args = (int(target), reason, actor, host, pid, known_gen, own_rules)
        return self.decide(args, on_missing, self.scripts.control, control_args, known_gen)

    def read_with_time(self, key: str) -> tuple[dict[str, str], int]:
        """The circuit's hash and the Redis ``TIME`` (ms) of the node holding it."""
        seconds, micros, flat = self._eval(READ, (hash_key(key),), ())
        raw = dict(zip(flat[::2], flat[1::2], strict=True))
        return decode_hash(raw), int(seconds) * 1000 + int(micros) // 1000

    def configure(
        self,
        args: CircuitArgs,
        rules: SharedRules,
        reason: str = "configure",
        actor: str = "",
        known_gen: int = 0,
        on_missing: OnMissing = new_circuit,
    ) -> tuple[SharedRules | None, Reply]:
        """Store ``rules`` with the circuit; the rules it had (None if none) and the reply."""
        host, pid, _ = args.tail
        script_args = (*rules_values(rules), known_gen, reason, actor, host, pid)
        raw_previous, raw_reply = self._eval(self.scripts.configure, args.keys, script_args)
        if parse_reply(raw_reply).code == UNKNOWN_CODE:
            self.seed(args, on_missing(known_gen))
            raw_previous, raw_reply = self._eval(self.scripts.configure, args.keys, script_args)
        text = raw_previous.decode() if isinstance(raw_previous, bytes) else str(raw_previous)
        previous = rules_from_values(text.split(",")) if text else None
        return previous, _found(parse_reply(raw_reply), args)

    def rules(self, key: str) -> SharedRules | None:
        return rules_from_values(self.client.hmget(hash_key(key), *RULE_FIELDS))


DOCS = "docs/breaker.md, Redis configuration"


def _pairs(raw: Any) -> Iterator[tuple[str, str]]:
    """``CONFIG GET`` replies: a dict, or a dict per node in any shape redis-py gives."""
    if isinstance(raw, Mapping):
        for name, value in raw.items():
            if isinstance(value, Mapping | list | tuple):
                yield from _pairs(value)
            else:
                text = value.decode() if isinstance(value, bytes) else str(value)
                yield (name.decode() if isinstance(name, bytes) else str(name)), text
    elif isinstance(raw, list | tuple):
        for item in raw:
            yield from _pairs(item)


def evicting_policies(client: Any) -> tuple[set[str], int]:
    """The nodes' ``maxmemory-policy`` values evicting keys without a TTL; the top ``maxmemory``."""
    policies: set[str] = set()
    maxmemory = 0
    for name, value in _pairs(client.config_get("maxmemory*")):
        if name == "maxmemory-policy" and value.startswith("allkeys-"):
            policies.add(value)
        elif name == "maxmemory" and value.isdigit():
            maxmemory = max(maxmemory, int(value))
    return policies, maxmemory


def eviction_warning(client: Any, masked_url: str) -> str | None:
    """The warning to give about this Redis (``masked_url`` is printed); None if none."""
    try:
        policies, maxmemory = evicting_policies(client)
    except REDIS_DOWN_ERRORS as error:
        return (
            f"could not check the maxmemory-policy of Redis at {masked_url} (CONFIG GET: "
            f"{type(error).__name__}); the circuit breaker needs a policy that never evicts its "
            f"keys: noeviction, or a volatile-* policy ({DOCS})"
        )
    return describe_eviction(policies, maxmemory, masked_url)


def describe_eviction(policies: set[str], maxmemory: int, masked_url: str) -> str | None:
    if not policies:
        return None
    limit = f"maxmemory {maxmemory} bytes" if maxmemory else "maxmemory 0, no limit set yet"
    return (
        f"Redis at {masked_url} has maxmemory-policy {', '.join(sorted(policies))} ({limit}): it"
        " can evict the circuit breaker's keys (guard:breaker:{...}, which have no TTL) and with"
        " them an operator's trip. Set maxmemory-policy noeviction, or a volatile-* policy"
        " (those evict only keys with a TTL), or give the breaker its own Redis. Booking Guard"
        " restores a circuit it finds missing from the state PostgreSQL recorded (manual states"
        " exactly, open circuits as open), but its failure counts and half-open probes are lost"
        f" ({DOCS})"
    )
