"""Does this Redis keep the breaker's keys? They have no TTL, so only an ``allkeys-*``
``maxmemory-policy`` can evict them; ``CONFIG`` refused (managed Redis) is said, never fatal."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from guard.breaker.redis_store import REDIS_DOWN_ERRORS

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
