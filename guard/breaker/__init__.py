"""Circuit breaker shared by all processes through Redis (see ``docs/breaker.md``)."""

from guard.breaker.backend import Backend
from guard.breaker.circuit import CircuitBreaker, Ticket
from guard.breaker.codec import WindowCounts
from guard.breaker.errors import (
    BulkheadFullError,
    CircuitOpenError,
    ControlUnavailableError,
    GuardedCallTimeout,
    StoreUnavailableError,
)
from guard.breaker.listeners import BreakerEvent, EventKind
from guard.breaker.persistence import PostgresWriteBehind
from guard.breaker.pg_timeout import statement_timeout
from guard.breaker.registry import BreakerRegistry, load_settings_config, service_key
from guard.breaker.state import Action, BreakerConfig, Outcome, SharedRules, State

__all__ = [
    "Action",
    "Backend",
    "BreakerConfig",
    "BreakerEvent",
    "BreakerRegistry",
    "BulkheadFullError",
    "CircuitBreaker",
    "CircuitOpenError",
    "ControlUnavailableError",
    "EventKind",
    "GuardedCallTimeout",
    "Outcome",
    "PostgresWriteBehind",
    "SharedRules",
    "State",
    "StoreUnavailableError",
    "Ticket",
    "WindowCounts",
    "load_settings_config",
    "service_key",
    "statement_timeout",
]
