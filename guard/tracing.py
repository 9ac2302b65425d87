"""Optional OpenTelemetry tracing: spans around the booking path, the breaker's decisions and the
dispatcher's sends (docs/tracing.md).

With the `tracing` extra installed (`opentelemetry-api`) and a tracer provider set by the
application (its SDK, exporter and sampling are the application's choice), the spans go there.
Without the extra, every function here does nothing and `opentelemetry` is never imported: the
first span tries the import once and remembers that it failed. With the API but no provider set,
nothing is recorded either (no span objects are made at all, so the breaker's hot path stays as
it was).

Attributes carry ids, states, counts and codes only: never a phone number, a message, an
idempotency key or a secret. An exception sets the span's status to ERROR with the exception's
type name; its message (which may quote a caller's data) is not recorded.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from guard import __version__

AttributeValue = str | int | float | bool

_UNTRIED: Any = object()
# The opentelemetry.trace module, None when it cannot be imported, _UNTRIED before the first try.
_trace: Any = _UNTRIED


def _api() -> Any:
    global _trace  # noqa: PLW0603  (one import attempt per process)
    if _trace is _UNTRIED:
        try:
            _trace = importlib.import_module("opentelemetry.trace")
        except ImportError:
            _trace = None
    return _trace


_provider_set = False
_unset_until = 0.0  # monotonic time before which "no provider yet" is taken as still true
_RECHECK_SECONDS = 1.0


def active() -> bool:
    """Whether spans are recorded: the API is installed and the application set a provider.
    Every guarded call asks, and asking the API takes microseconds: a provider, once set, stays
    (remembered for good), and "none yet" is asked again at most once a second, so a provider
    set after the first calls is used from the next second on."""
    global _provider_set, _unset_until  # noqa: PLW0603
    if _provider_set:
        return True
    trace = _trace if _trace is not _UNTRIED else _api()
    if trace is None:
        return False
    now = time.monotonic()
    if now < _unset_until:
        return False
    _provider_set = not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )
    _unset_until = now + _RECHECK_SECONDS
    return _provider_set


class Span:
    """The span of a `span()` block, or nothing when tracing is off."""

    def __init__(self, span: Any = None) -> None:
        self._span = span

    def set(self, key: str, value: AttributeValue | None) -> None:
        if self._span is not None and value is not None:
            self._span.set_attribute(key, value)

    def fail(self, description: str) -> None:
        """Mark the span failed (status ERROR): a failure the code handled without raising."""
        if self._span is not None:
            trace = _api()
            self._span.set_status(trace.Status(trace.StatusCode.ERROR, description))


_NOTHING = Span()


@contextmanager
def span(name: str, attributes: Mapping[str, AttributeValue] | None = None) -> Iterator[Span]:
    """A span, the current one inside the block (its children nest under it); an exception
    leaving the block marks it failed with the exception's type name and goes on."""
    if not active():
        yield _NOTHING
        return
    tracer = _api().get_tracer("guard", __version__)
    with tracer.start_as_current_span(
        name,
        attributes=dict(attributes or {}),
        record_exception=False,  # its message may quote a phone number
        set_status_on_exception=False,
    ) as current:
        traced = Span(current)
        try:
            yield traced
        except BaseException as error:
            traced.set("error.type", type(error).__name__)
            traced.fail(type(error).__name__)
            raise


def trace_id() -> str | None:
    """The current trace's id (32 hex digits, as tracing back ends show it), or None when no
    span is being recorded."""
    trace = _api()
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}"
