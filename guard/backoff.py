"""The one formula of every backoff in Booking Guard: exponential, capped."""

from __future__ import annotations

# Beyond this many growth steps every sane base is past every cap; bounding the exponent keeps
# a float power from overflowing after a very long outage.
_MAX_STEPS = 256


def exponential_delay(attempt: int, base: float, cap: float, factor: float = 2.0) -> float:
    """The wait before retry number `attempt` (1-based): base, base * factor, ..., at most cap."""
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    return float(min(cap, base * factor ** min(attempt - 1, _MAX_STEPS)))
