"""Parameter types shared by the commands: numbers are checked against the range of the database
column or argument they end in, before any SQL runs, so an out-of-range value is a usage error
(exit 2) that names the option, not a database error about an integer."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

# PostgreSQL's integer and bigint.
INT_MAX = 2**31 - 1
BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1

# An id of a row (identity columns start at 1).
ROW_ID = click.IntRange(1, BIGINT_MAX)
# Any bigint, for ids an application assigns itself (companies).
BIGINT = click.IntRange(BIGINT_MIN, BIGINT_MAX)
# A count or a size that reaches an integer argument or a LIMIT.
COUNT = click.IntRange(1, INT_MAX)


class NonEmptyText(click.ParamType[str]):
    """Text that must say something: an empty or blank note, reason or name is refused."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if not text.strip():
            self.fail("must not be empty", param, ctx)
        if "\x00" in text:  # PostgreSQL text cannot hold NUL
            self.fail("must not contain a NUL character", param, ctx)
        return text


NON_EMPTY_TEXT = NonEmptyText()


class FiniteFloatRange(click.FloatRange):
    """A float range that refuses nan and infinity (nan passes any bound)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


def cap_unbounded_integers(command: click.Command) -> None:
    """Give every integer parameter of the tree without an upper bound PostgreSQL's integer
    maximum, so that a command added without thinking of it still refuses 10^20 as a usage error
    instead of sending a numeric the database cannot match to any function; and make every float
    parameter refuse nan and infinity."""
    for param in command.params:
        kind = param.type
        if isinstance(kind, click.FloatRange) and not isinstance(kind, FiniteFloatRange):
            param.type = FiniteFloatRange(
                kind.min, kind.max, min_open=kind.min_open, max_open=kind.max_open, clamp=kind.clamp
            )
        elif type(kind) is click.types.FloatParamType:
            param.type = FiniteFloatRange()
        if isinstance(kind, click.IntRange) and kind.max is None:
            low = kind.min
            param.type = click.IntRange(low, INT_MAX, min_open=kind.min_open, clamp=kind.clamp)
        elif type(kind) is click.types.IntParamType:
            param.type = click.IntRange(-INT_MAX - 1, INT_MAX)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            cap_unbounded_integers(sub)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration_seconds(text: str, default_unit: str | None = None) -> float | None:
    """`250ms`, `90s`, `15min`, `90m`, `24h`, `7d` in seconds, a bare number in `default_unit`
    (none: a unit is required); None for anything else."""
    found = _DURATION.match(text)
    unit = found[2] or default_unit if found else None
    return None if found is None or unit is None else float(found[1]) * _UNIT_SECONDS[unit]


def moment(
    value: str, ahead: bool = False, now: datetime | None = None, longest: timedelta | None = None
) -> datetime:
    """An ISO 8601 time (no zone: UTC), or a span (`90m`, `24h`, `7d`, at most `longest`) that
    long before now (after it when `ahead`); a usage error for anything else."""
    text = value.strip()
    length = duration_seconds(text)
    if length is not None:
        try:
            change = timedelta(seconds=length)
            if longest is not None and change > longest:
                raise click.BadParameter(f"{value!r} is longer than {longest.days} days")
            return (now or datetime.now(UTC)) + (change if ahead else -change)
        except OverflowError:
            reach = "beyond year 9999" if ahead else "before year 1"
            raise click.BadParameter(f"{value!r} reaches {reach}") from None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither an ISO 8601 time (2026-11-22T08:00:00Z) nor a span"
            f" ({'30d' if ahead else '2h, 1d'})"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_F = TypeVar("_F", bound=Callable[..., Any])


def seconds_option(name: str, minimum: float, default: float, **extra: Any) -> Callable[[_F], _F]:
    """An option of seconds (or hours) with a floor and a default shown in --help."""
    return click.option(
        name, type=click.FloatRange(min=minimum), default=default, show_default=True, **extra
    )


def options(*decorators: Callable[[_F], _F]) -> Callable[[_F], _F]:
    """Options that several commands share, as one decorator, in the order --help lists them."""

    def declare(function: _F) -> _F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return declare
