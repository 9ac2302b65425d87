"""Circuit breaker shared by all processes through Redis (see ``docs/breaker.md``)."""

from guard.breaker.backend import REDIS_URL_ENV, Backend
from guard.breaker.circuit import CircuitBreaker, GuardedBlock, Ticket
from guard.breaker.codec import CircuitSnapshot, WindowCounts
from guard.breaker.listeners import BreakerEvent, EventKind, Listener
from guard.breaker.persistence import PostgresWriteBehind
from guard.breaker.registry import (
    BreakerRegistry,
    config_from_settings,
    load_settings_config,
    service_key,
)
from guard.breaker.state import (
    Action,
    BreakerConfig,
    BulkheadFullError,
    CircuitOpenError,
    ControlUnavailableError,
    GuardedCallTimeout,
    Outcome,
    SharedRules,
    State,
    StoreUnavailableError,
)
from guard.connection import statement_timeout

__all__ = [
    "REDIS_URL_ENV",
    "Action",
    "Backend",
    "BreakerConfig",
    "BreakerEvent",
    "BreakerRegistry",
    "BulkheadFullError",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitSnapshot",
    "ControlUnavailableError",
    "EventKind",
    "GuardedBlock",
    "GuardedCallTimeout",
    "Listener",
    "Outcome",
    "PostgresWriteBehind",
    "SharedRules",
    "State",
    "StoreUnavailableError",
    "Ticket",
    "WindowCounts",
    "config_from_settings",
    "load_settings_config",
    "service_key",
    "statement_timeout",
]
