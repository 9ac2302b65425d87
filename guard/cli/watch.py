"""`guard watch`: the alert dispatcher (docs/alerts.md)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import click

from guard.cli import EXIT_INTERRUPTED
from guard.cli.output import when
from guard.cli.params import moment, seconds_option
from guard.connection import who_acts
from guard.errors import ConfigurationError, GuardError
from guard.ops.dispatch.loop import (
    ALERTS_ONLY_CHANNELS,
    SEVERITIES,
    Dispatcher,
    DispatchSettings,
    default_worker_id,
)
from guard.ops.dispatch.sinks import (
    AlertmanagerSink,
    EmailSink,
    Sink,
    SmtpSettings,
    StdoutSink,
    WebhookSink,
)
from guard.redact import install_log_filter

CHANNELS = ("stdout", "webhook", "email", "alertmanager")
# Channels that take a report or a digest: Alertmanager takes alerts one by one.
MESSAGE_CHANNELS = tuple(c for c in CHANNELS if c not in ALERTS_ONLY_CHANNELS)
# The longest digest period: a week.
DIGEST_MAX_HOURS = 168

_Value = TypeVar("_Value")
_F = TypeVar("_F", bound=Callable[..., Any])
# Messages per minute each channel may send by default (0: unlimited), and what --help says.
_RATES = {
    "stdout": (0, "Messages per minute on stdout (0: unlimited); beyond it, one summary."),
    "webhook": (20, None),
    "email": (5, None),
    "alertmanager": (
        0,
        "Messages per minute to Alertmanager (0: unlimited; Alertmanager groups and throttles).",
    ),
}


def _rate_options(function: _F) -> _F:
    for channel, (default, help_text) in reversed(_RATES.items()):
        function = click.option(
            f"--{channel}-rate",
            type=click.IntRange(min=0),
            default=default,
            show_default=True,
            envvar=f"GUARD_WATCH_{channel.upper()}_RATE",
            help=help_text,
        )(function)
    return function


# The variable that configures each channel but stdout: set, the channel is on by default.
SETTINGS = {
    "webhook": "GUARD_SLACK_WEBHOOK_URL",
    "email": "GUARD_SMTP_HOST",
    "alertmanager": "GUARD_ALERTMANAGER_URL",
}


def sinks(
    channels: list[str],
    rates: dict[str, int],
    send_timeout: float,
    smtp: dict[str, Any],
    alertmanager_hold: float = 24.0,
) -> list[tuple[Sink, int]]:
    """Each channel's sink and rate; `smtp` holds watch's --smtp-* options by their names."""
    sinks: list[tuple[Sink, int]] = []
    for name in channels:
        url = os.environ.get(SETTINGS.get(name, ""), "")
        if name in ("webhook", "alertmanager") and not url:
            raise ConfigurationError(f"channel {name} needs {SETTINGS[name]} in the environment")
        sink: Sink
        if name == "stdout":
            sink = StdoutSink()
        elif name == "webhook":
            sink = WebhookSink(url, timeout_s=send_timeout)
        elif name == "alertmanager":
            hold = timedelta(hours=alertmanager_hold)
            sink = AlertmanagerSink(url, timeout_s=send_timeout, hold=hold)
        else:
            if not smtp["smtp_host"] or not smtp["smtp_from"] or not smtp["smtp_to"]:
                raise ConfigurationError(
                    "channel email needs --smtp-host, --smtp-from and --smtp-to"
                    " (or GUARD_SMTP_HOST, GUARD_SMTP_FROM and GUARD_SMTP_TO)"
                )
            settings = SmtpSettings(
                host=smtp["smtp_host"],
                port=smtp["smtp_port"],
                sender=smtp["smtp_from"],
                recipients=[r.strip() for r in smtp["smtp_to"].split(",") if r.strip()],
                starttls=smtp["smtp_starttls"],
                username=os.environ.get("GUARD_SMTP_USER") or None,
                password=os.environ.get("GUARD_SMTP_PASSWORD") or None,
                timeout_s=send_timeout,
            )
            sink = EmailSink(settings)
        sinks.append((sink, rates[name]))
    return sinks


def _whole(text: str, low: int, high: int, what: str) -> int:
    """A whole number from `low` to `high`, ASCII digits only; a usage error naming `what`."""
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise click.BadParameter(f"{text[:20]!r} is not {what}")
    return int(text)


def _priorities(value: str | None) -> frozenset[int]:
    """`0,1` -> {0, 1}; a usage error (exit 2) for anything but small non-negative integers."""
    if value is None or not value.strip():
        return frozenset()
    what = "a review priority (0, 1, 2, ...)"
    return frozenset(_whole(part.strip(), 0, 32767, what) for part in value.split(","))


def _per_channel(
    values: tuple[str, ...], channels: tuple[str, ...], parse: Callable[[str], _Value]
) -> dict[str, _Value]:
    """`CHANNEL=VALUE` options (repeated) -> {channel: value}."""
    out: dict[str, _Value] = {}
    for raw in values:
        name, sep, value = raw.partition("=")
        name = name.strip()
        if not sep:
            raise click.BadParameter(f"{raw[:40]!r} is not CHANNEL=VALUE")
        if name not in channels:
            raise click.BadParameter(
                f"{name[:40]!r} is not a channel here (one of {', '.join(channels)})"
            )
        if name in out:
            raise click.BadParameter(f"channel {name} is given twice")
        out[name] = parse(value.strip())
    return out


def _digest_hours(value: str) -> int:
    return _whole(
        value, 1, DIGEST_MAX_HOURS, f"a digest period (whole hours from 1 to {DIGEST_MAX_HOURS})"
    )


def _severity(value: str) -> str:
    if value not in SEVERITIES:
        raise click.BadParameter(
            f"{value[:20]!r} is not a severity (one of {', '.join(SEVERITIES)})"
        )
    return value


@click.command()
@click.option(
    "--channel",
    "channels",
    multiple=True,
    type=click.Choice(CHANNELS),
    help="A channel to deliver to (repeat). Default: stdout, plus webhook when"
    " GUARD_SLACK_WEBHOOK_URL is set, email when GUARD_SMTP_HOST is set and alertmanager when"
    " GUARD_ALERTMANAGER_URL is set.",
)
@click.option("--once", is_flag=True, help="Deliver what is due now and exit (cron, CI).")
@click.option(
    "--resolved",
    "resolved_channels",
    multiple=True,
    type=click.Choice(CHANNELS),
    envvar="GUARD_WATCH_RESOLVED",
    help="Also tell this channel, once, when an alert it was sent resolves (repeat; opt-in;"
    " GUARD_WATCH_RESOLVED takes space-separated names).",
)
@click.option(
    "--report",
    "report_channels",
    multiple=True,
    type=click.Choice(MESSAGE_CHANNELS),
    envvar="GUARD_WATCH_REPORT",
    help="Also send this channel each stored daily report once, as `guard report --markdown`"
    " prints it (repeat; opt-in; GUARD_WATCH_REPORT takes space-separated names).",
)
@click.option(
    "--digest",
    "digest_hours",
    multiple=True,
    metavar="CHANNEL=HOURS",
    envvar="GUARD_WATCH_DIGEST",
    callback=lambda _ctx, _param, value: _per_channel(value, MESSAGE_CHANNELS, _digest_hours),
    help="Send this channel one digest of the alerts opened in each period of HOURS (1-168,"
    " counted from midnight UTC) instead of one message per alert (repeat per channel).",
)
@click.option(
    "--min-severity",
    "min_severity",
    multiple=True,
    metavar="CHANNEL=SEVERITY",
    envvar="GUARD_WATCH_MIN_SEVERITY",
    callback=lambda _ctx, _param, value: _per_channel(value, CHANNELS, _severity),
    help="Send this channel only alerts of SEVERITY or more serious (critical, high, medium,"
    " low); the others are recorded skipped in guard.delivery_skips (repeat per channel).",
)
@click.option(
    "--review-notices",
    "review_priorities",
    metavar="PRIORITIES",
    default=None,
    envvar="GUARD_WATCH_REVIEW_NOTICES",
    callback=lambda _ctx, _param, value: _priorities(value),
    help="Also tell every channel, once, when a review item of one of these priorities is opened"
    " (comma-separated, e.g. 0,1; 0 = booking_outcome_unknown; opt-in). Items opened before a"
    " channel first took a priority are not announced.",
)
@click.option(
    "--skip-before",
    "skip_before",
    metavar="TIME",
    default=None,
    callback=lambda _ctx, _param, value: None if value is None else moment(value),
    help="First mark skipped, on the chosen channels, the deliveries of alerts last seen before"
    " TIME (ISO 8601, or an age such as 2h or 1d); recorded in guard.delivery_skips (who, when,"
    " how many). Then deliver as usual.",
)
@seconds_option(
    "--poll-interval",
    0.01,
    30.0,
    envvar="GUARD_WATCH_POLL_INTERVAL",
    help="Seconds between polls when no NOTIFY arrives.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=200, show_default=True)
@seconds_option(
    "--lease",
    0.1,
    60.0,
    help="Seconds a claim is ours; a killed dispatcher's claims are free again after it.",
)
@seconds_option("--send-timeout", 0.05, 10.0, help="Seconds one webhook/SMTP send may take.")
@click.option("--max-attempts", type=click.IntRange(min=1), default=10, show_default=True)
@seconds_option("--retry-base", 0, 5.0, help="Seconds before the first retry; doubles per attempt.")
@seconds_option("--retry-max", 0, 900.0)
@_rate_options
@click.option(
    "--alertmanager-hold",
    type=click.FloatRange(min=0.01, max=24 * 366),
    default=24.0,
    show_default=True,
    envvar="GUARD_ALERTMANAGER_HOLD_HOURS",
    help="Hours an alert stays active in Alertmanager unless resolved earlier (its endsAt).",
)
@click.option("--smtp-host", envvar="GUARD_SMTP_HOST", default=None)
@click.option("--smtp-port", envvar="GUARD_SMTP_PORT", type=int, default=587, show_default=True)
@click.option("--smtp-from", "smtp_from", envvar="GUARD_SMTP_FROM", default=None)
@click.option("--smtp-to", envvar="GUARD_SMTP_TO", default=None, help="Comma-separated.")
@click.option(
    "--smtp-starttls/--no-smtp-starttls",
    envvar="GUARD_SMTP_STARTTLS",
    default=False,
    show_default=True,
)
@click.option("--worker-id", default=None, help="Name of this dispatcher (default host:pid).")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    envvar="GUARD_LOG_LEVEL",
)
@click.pass_context
def watch(
    ctx: click.Context,
    /,
    channels: tuple[str, ...],
    once: bool,
    resolved_channels: tuple[str, ...],
    report_channels: tuple[str, ...],
    digest_hours: dict[str, int],
    min_severity: dict[str, str],
    review_priorities: frozenset[int],
    skip_before: datetime | None,
    poll_interval: float,
    batch_size: int,
    lease: float,
    send_timeout: float,
    max_attempts: int,
    retry_base: float,
    retry_max: float,
    alertmanager_hold: float,
    worker_id: str | None,
    log_level: str,
    **options: Any,  # --CHANNEL-rate, --smtp-*
) -> None:
    """Deliver alerts from the outbox to stdout (JSON lines), a Slack webhook, email and
    Alertmanager.

    Wakes on NOTIFY guard_alerts, polls as a fallback; at least once, per-channel throttling,
    retries with exponential backoff. Runs until SIGTERM/SIGINT, or once with --once.
    Logs go to stderr; stdout carries only the JSON lines of the stdout channel."""
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, log_level.upper()),
        format="guard watch: %(levelname)s %(message)s",
    )
    install_log_filter()  # no URL token, credential or password in any log line
    # A channel named for reports, digests, severities or resolved notices is one to deliver to:
    # without --channel it joins the default ones, so a missing setting is named (sinks).
    named = [*report_channels, *digest_hours, *min_severity, *resolved_channels]
    default = ["stdout", *(name for name, key in SETTINGS.items() if os.environ.get(key))]
    chosen = list(dict.fromkeys(channels or [*default, *named]))
    rates = {channel: options[f"{channel}_rate"] for channel in CHANNELS}
    settings = DispatchSettings(
        poll_interval_s=poll_interval,
        batch_size=batch_size,
        lease_s=lease,
        send_timeout_s=send_timeout,
        max_attempts=max_attempts,
        backoff_base_s=retry_base,
        backoff_max_s=max(retry_max, retry_base),
        worker_id=worker_id or default_worker_id(),
        resolved_channels=frozenset(resolved_channels),
        review_priorities=review_priorities,
        report_channels=frozenset(report_channels),
        digest_hours=digest_hours,
        min_severity=min_severity,
    )
    dispatcher = Dispatcher(
        ctx.obj.get("database_url"),
        sinks(chosen, rates, send_timeout, options, alertmanager_hold),
        settings,
    )
    if skip_before is not None:
        actor = who_acts()
        skipped = dispatcher.skip_before(skip_before, actor)
        click.echo(
            f"guard watch: skipped {skipped} deliveries of alerts last seen before"
            f" {when(skip_before)} on {', '.join(dispatcher.channel_names)} (by {actor};"
            " recorded in guard.delivery_skips)",
            err=True,
        )
    if once:
        stats = dispatcher.run_once()
        counts, retrying = dispatcher.pending()
        summary = {**stats.as_dict(), "deliveries": counts, "retrying": retrying}
        click.echo(json.dumps(summary, sort_keys=True), err=True)
        if stats.unrenderable:
            raise GuardError(
                f"{stats.unrenderable} alert(s) could not be rendered and were marked failed"
                " (guard.deliveries.last_error says why); the others were delivered"
            )
        if stats.failed_sends or retrying:
            # Also a failure of an earlier run still waiting for its retry: cron must not see
            # success while an alert is stuck.
            stuck = ", ".join(f"{channel} {n}" for channel, n in retrying.items())
            raise GuardError(
                f"{stats.failed_sends} send(s) failed in this run; "
                + (f"failed deliveries pending a retry: {stuck}" if stuck else "retried later")
            )
        return

    signals: list[int] = []

    def _stop(signum: int, _frame: object) -> None:
        logging.getLogger("guard.dispatch").info(
            "%s: finishing the current send", signal.Signals(signum).name
        )
        signals.append(signum)
        dispatcher.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stats = dispatcher.run_forever()
    logging.getLogger("guard.dispatch").info(
        "stopped: %s", json.dumps(stats.as_dict(), sort_keys=True)
    )
    if signal.SIGINT in signals:  # Ctrl-C: 130, as README's table says (SIGTERM: 0)
        ctx.exit(EXIT_INTERRUPTED)
