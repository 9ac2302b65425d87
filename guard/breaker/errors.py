"""What a guarded call raises when the breaker, not the dependency, says no (or gives up)."""

from __future__ import annotations

from guard.breaker.state import State


class CircuitOpenError(Exception):
    """The circuit rejected the call; the dependency was not called."""

    def __init__(self, key: str, state: State, retry_after: float | None) -> None:
        # The message is built only when printed: rejections are on the hot path.
        super().__init__(key, state, retry_after)
        self.key = key
        self.state = state
        self.retry_after = retry_after

    def __str__(self) -> str:
        hint = f"; retry in {self.retry_after:.1f} s" if self.retry_after is not None else ""
        return f"circuit {self.key} is {self.state.label}{hint}"


class BulkheadFullError(CircuitOpenError):
    """``max_concurrent_calls`` calls of this process are still running through the circuit
    (some may be hung); the dependency was not called and nothing is counted. A
    ``CircuitOpenError``, so a fallback on a rejection handles it too."""

    def __init__(self, key: str, state: State, limit: int) -> None:
        super().__init__(key, state, None)
        self.limit = limit

    def __str__(self) -> str:
        return f"circuit {self.key}: {self.limit} calls already in flight (bulkhead full)"


class StoreUnavailableError(CircuitOpenError):
    """Redis is unreachable and the circuit's ``when_store_unreachable`` is ``"open"``."""

    def __str__(self) -> str:
        return f"circuit {self.key}: breaker state unreachable, calls refused until it is back"


class ControlUnavailableError(RuntimeError):
    """A manual action or a state read needs Redis, which cannot be reached."""


class GuardedCallTimeout(TimeoutError):
    """The guarded call did not finish within ``call_timeout_seconds`` (counted a failure)."""

    def __init__(self, key: str, timeout: float) -> None:
        self.key = key
        self.timeout = timeout
        super().__init__(f"call guarded by circuit {key} timed out after {timeout:g} s")
