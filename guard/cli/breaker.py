"""`guard breaker list|show|trip|reset|disable|force-close|configure`: inspect and operate
circuits.

Redis from ``GUARD_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``); PostgreSQL from the main
group's ``--database-url`` (else the PG* variables). Errors are one line and a non-zero exit.
Everything goes through ``guard.ops.breaker_operator``, the breaker's door for operators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from click.decorators import FC

from guard.breaker.state import MAX_COUNT_WINDOW, MAX_TIME_WINDOW_SECONDS, RULE, Action
from guard.cli.output import emit_json, emit_table, json_option, warn, when, wide_option
from guard.cli.params import NON_EMPTY_TEXT, options
from guard.errors import GuardError
from guard.ops.breaker_operator import (
    EVENT_FIELDS,
    CircuitView,
    Operator,
    operator_session,
)

reason_option = click.option(
    "--reason",
    type=NON_EMPTY_TEXT,
    required=True,
    help="Why (recorded in the event log with your user name).",
)


@contextmanager
def _operator(ctx: click.Context, *, changes: bool = False) -> Iterator[Operator]:
    """The operator session of a command. ``changes``: the command changes a circuit, so nothing
    reaches Redis before PostgreSQL has let the login change it (the session checks); the
    eviction warning then comes after the change."""
    with operator_session((ctx.obj or {}).get("database_url")) as operator:
        if not changes:
            _warn_once(ctx, operator)
        yield operator
        if changes:
            _warn_once(ctx, operator)


def _warn_once(ctx: click.Context, operator: Operator) -> None:
    """An operator about to trip a circuit should know when Redis may evict the trip (said once
    per command: `trip --create` opens two sessions)."""
    if ctx.meta.get("guard.breaker.redis_checked"):
        return
    ctx.meta["guard.breaker.redis_checked"] = True
    warning = operator.eviction_warning()
    if warning is not None:
        warn(warning)


def _when(view: CircuitView) -> str:
    """Time to the next probe; with a grown cooldown, of how long: ``12.3 s of 120 s``."""
    if view.recovers_in_seconds is None:
        return ""
    text = f"{view.recovers_in_seconds:.1f} s"
    rules, cooldown = view.rules, view.cooldown_seconds
    if rules is not None and cooldown is not None and cooldown * 1000 != rules.cooldown_ms:
        text += f" of {cooldown:g} s"
    return text


def _state_rows(views: list[CircuitView]) -> list[list[Any]]:
    return [
        [
            view.key,
            view.state.label,
            view.generation,
            view.failure_count,
            view.success_count,
            view.opened_at,
            _when(view),
            view.last_failure_at,
            view.closed_at,
            view.rules.text() if view.rules is not None else "",
            # what the failure-rate window holds now
            f"{view.window.calls} calls, {view.window.failures} failed,"
            f" {view.window.slow_calls} slow"
            if view.rules is not None and view.rules.has_window
            else "",
            view.source,
        ]
        for view in views
    ]


STATE_COLUMNS = [
    "key",
    "state",
    "gen",
    "failures",
    "successes",
    "opened at",
    "probe in",
    "last failure",
    "closed at",
    "rules",
    "window",
    "source",
]
# Left out first to last when a terminal is too narrow for every column (`--wide` shows them).
STATE_DROP_ORDER = ["source", "window", "gen", "closed at", "successes", "probe in", "rules"]


@click.group()
def breaker() -> None:
    """Inspect and operate the circuit breakers."""


@breaker.command("list")
@wide_option
@json_option
@click.pass_context
def list_circuits(ctx: click.Context, as_json: bool) -> None:
    """Every known circuit with its state.

    When one of the two stores (Redis, PostgreSQL) cannot be read, what the other has is printed
    and the command exits 1: the list may be incomplete or stale."""
    with _operator(ctx) as operator:
        circuits, unreachable = operator.list()
    if as_json:
        emit_json([view.as_dict() for view in circuits])
    else:
        emit_table("circuits", STATE_COLUMNS, _state_rows(circuits), drop_order=STATE_DROP_ORDER)
    if unreachable:
        raise GuardError(
            f"cannot read {', '.join(unreachable)}: the list above is only what the other"
            " store has, and may be incomplete or stale"
        )


@breaker.command("show")
@click.argument("key")
@click.option(
    "--events",
    "event_count",
    type=click.IntRange(0, 10_000),
    default=10,
    show_default=True,
    help="Recent events.",
)
@json_option
@click.pass_context
def show(ctx: click.Context, key: str, event_count: int, as_json: bool) -> None:
    """One circuit: state, counters, opened-at, recovery time, last failure, closed-at and recent
    events."""
    with _operator(ctx) as operator:
        view = operator.show(key, event_count)
    if as_json:
        emit_json(view.as_dict())
        return
    emit_table(f"circuit {key}", STATE_COLUMNS, _state_rows([view]))
    emit_table(
        "recent events",
        ["gen", "from", "to", "reason", "failures", "successes", "actor", "host", "pid", "at"],
        [
            [*(event[name] for name in EVENT_FIELDS), when(event["occurred_at"])]
            for event in view.events
        ],
    )


def _act(ctx: click.Context, key: str, action: Action, reason: str, as_json: bool) -> None:
    with _operator(ctx, changes=True) as operator:
        result = operator.act(key, action, reason)
    _emit_result(f"{action.value} {key}", result, as_json)


def _emit_result(title: str, result: dict[str, Any], as_json: bool) -> None:
    """What a change did: a JSON object, or a table of one row."""
    if as_json:
        emit_json(result)
    else:
        emit_table(title, list(result), [list(result.values())])


def _rule_option(flag: str, name: str, help: str, off: float | None = None) -> Callable[[FC], FC]:
    """``--flag`` for the ``BreakerConfig`` field ``name``, within its bounds (``RULE``); ``off``:
    the value below them that turns the rule off."""
    rule = RULE[name]
    lowest = rule.lowest if off is None else off
    kind: click.ParamType[Any] = click.FloatRange(lowest, rule.highest)
    if rule.choices:
        kind = click.Choice(rule.choices)
    elif rule.whole:
        kind = click.IntRange(int(lowest), int(rule.highest))
    return click.option(flag, name, type=kind, help=help)


# The rules `trip --create` and `configure` both take.
_threshold_options = options(
    _rule_option("--failure-threshold", "failure_threshold", "Failures that open it."),
    _rule_option("--success-threshold", "success_threshold", "Probe successes to close."),
    _rule_option("--cooldown", "cooldown_seconds", "Seconds open."),
)


@breaker.command("trip")
@click.argument("key")
@reason_option
@click.option(
    "--create",
    is_flag=True,
    help="The circuit may be new (never used yet): create it, with the rules given or the"
    " defaults, so a planned outage can be prepared before the first call.",
)
@_threshold_options
@json_option
@click.pass_context
def trip(
    ctx: click.Context, /, key: str, reason: str, create: bool, as_json: bool, **rules: Any
) -> None:
    """Force the circuit open for every process until `reset`.

    A key never used is refused (a typo must not trip nothing) unless --create is given."""
    if any(value is not None for value in rules.values()) and not create:
        raise click.UsageError(
            "--failure-threshold, --success-threshold and --cooldown go with --create"
            " (for a known circuit: `guard breaker configure`)"
        )
    if create:
        with _operator(ctx, changes=True) as operator:
            # a known circuit keeps its rules: `configure` changes them
            operator.configure(key, rules, only_if_new=True)
    try:
        _act(ctx, key, Action.FORCE_OPEN, reason, as_json)
    except GuardError as error:
        if "unknown circuit key" in str(error):
            raise GuardError(
                f"{error}; to prepare a circuit that was never used: add --create"
            ) from None
        raise


def _action_command(name: str, action: Action, summary: str) -> None:
    """Register `guard breaker NAME KEY --reason`: one operator action, nothing else to say."""

    @breaker.command(name, help=summary)
    @click.argument("key")
    @reason_option
    @json_option
    @click.pass_context
    def command(ctx: click.Context, key: str, reason: str, as_json: bool) -> None:
        _act(ctx, key, action, reason, as_json)


_action_command(
    "reset", Action.RESET, "Back to CLOSED with zero counters (ends trip, disable and force-close)."
)
_action_command(
    "disable", Action.DISABLE, "Let every call through without counting, until `reset`."
)
_action_command(
    "force-close",
    Action.FORCE_CLOSE,
    "Keep the circuit closed (failures do not trip it), until `reset`.",
)


@breaker.command("configure")
@click.argument("key")
@_threshold_options
@_rule_option(
    "--failure-rate",
    "failure_rate_threshold",
    "Open when this % of the calls in the window failed (0: off).",
    off=0,
)
@_rule_option(
    "--slow-call-duration", "slow_call_seconds", "Seconds: a call that takes longer is slow."
)
@_rule_option(
    "--slow-call-rate",
    "slow_call_rate_threshold",
    "Open when this % of the calls in the window were slow (0: off).",
    off=0,
)
@_rule_option(
    "--window-type",
    "window_type",
    "count: the last N calls; time: the calls of the last N seconds.",
)
@_rule_option(
    "--window-size",
    "window_size",
    f"N: calls (count, up to {MAX_COUNT_WINDOW}) or seconds (time, up to"
    f" {MAX_TIME_WINDOW_SECONDS}).",
)
@_rule_option(
    "--minimum-calls",
    "minimum_calls",
    "Calls the window must hold before a rate can open the circuit.",
)
@_rule_option(
    "--cooldown-growth",
    "cooldown_growth_factor",
    "Each failed probe multiplies the cooldown by this factor, up to --max-cooldown"
    " (1: a constant cooldown).",
    off=1,
)
@_rule_option(
    "--max-cooldown", "max_cooldown_seconds", "Seconds: the longest a grown cooldown gets."
)
@json_option
@click.pass_context
def configure(ctx: click.Context, /, key: str, as_json: bool, **rules: Any) -> None:
    """Store the circuit's rules for every process (values not given are kept).

    The failure-rate window (off unless a rate is set) opens the circuit when --failure-rate %
    of the calls in it failed, or --slow-call-rate % took longer than --slow-call-duration,
    once it holds --minimum-calls calls; beside the consecutive --failure-threshold.

    The growing cooldown (off unless --cooldown-growth is above 1): each failed probe multiplies
    the cooldown by --cooldown-growth, up to --max-cooldown; the circuit closing starts again
    from --cooldown."""
    # every option but --json is named after the BreakerConfig field it sets (rules_over)
    if all(value is None for value in rules.values()):
        raise GuardError(
            "nothing to configure: give --failure-threshold, --success-threshold, --cooldown,"
            " a failure-rate window option (--failure-rate, --slow-call-rate ...) or"
            " --cooldown-growth/--max-cooldown"
        )
    with _operator(ctx, changes=True) as operator:
        result = operator.configure(key, rules)
    assert result is not None  # None only for only_if_new
    _emit_result(f"configure {key}", result, as_json)
