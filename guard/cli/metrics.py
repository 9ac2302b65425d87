"""`guard metrics`: the Prometheus exporter (docs/metrics.md)."""

from __future__ import annotations

import logging
import signal
import sys
import threading

import click
from prometheus_client import generate_latest, start_http_server

from guard.cli import EXIT_INTERRUPTED
from guard.cli.params import seconds_option
from guard.errors import GuardError
from guard.ops.metrics import DEFAULT_CACHE_INTERVAL_S, DEFAULT_PORT, GuardCollector, registry_for


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    envvar="GUARD_METRICS_PORT",
    help="Serve /metrics on this port.",
)
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    envvar="GUARD_METRICS_ADDRESS",
    help="Listen address (0.0.0.0 for every interface).",
)
@click.option(
    "--once",
    is_flag=True,
    help="Print the exposition text to stdout and exit (tests, textfile collectors).",
)
@seconds_option(
    "--latency-window",
    1,
    300.0,
    help="Seconds of guard.validation_metrics the latency histogram covers.",
)
@click.option(
    "--statement-timeout-ms",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="statement_timeout of each query of a scrape (one per series); the login's"
    " statement_timeout when that is lower.",
)
@seconds_option(
    "--cache-interval",
    0,
    DEFAULT_CACHE_INTERVAL_S,
    envvar="GUARD_METRICS_CACHE_INTERVAL",
    help="Seconds between two readings of the series that scan history (consistency,"
    " corrections, review items, deliveries, counters): read once in the background as the"
    " exporter starts and again, in the background, at the first scrape past the interval;"
    " scrapes serve the values last read.",
)
@click.pass_context
def metrics(
    ctx: click.Context,
    port: int,
    address: str,
    once: bool,
    latency_window: float,
    statement_timeout_ms: int,
    cache_interval: float,
) -> None:
    """Export Booking Guard metrics for Prometheus (read from PostgreSQL on every scrape)."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="guard metrics: %(message)s")
    database_url = ctx.obj.get("database_url")
    # No connection test before serving: an exporter that exits while PostgreSQL is down turns
    # "database unreachable" into "target down". Every scrape connects again and says guard_up 0
    # until PostgreSQL answers; --once writes guard_up 0 and exits 1.
    collector = GuardCollector(
        database_url,
        latency_window_s=latency_window,
        statement_timeout_ms=statement_timeout_ms,
        cache_interval_s=cache_interval,
    )
    registry = registry_for(collector)
    if once:
        text = generate_latest(registry).decode()
        collector.close()
        sys.stdout.write(text)
        if "\nguard_up 1.0" not in "\n" + text:
            if collector.standby is not None:
                raise GuardError(
                    f"{collector.standby} is a read-only standby (in recovery), so guard_up is 0:"
                    " point `guard metrics` at the primary (a multi-host URL with"
                    " target_session_attrs=read-write, docs/ha.md)"
                )
            raise GuardError("the scrape could not read PostgreSQL (guard_up 0)")
        if collector.login_limit is not None:  # a series the login's limits kept from being read
            raise collector.login_limit
        return
    stop = threading.Event()
    signals: list[int] = []

    def _stop(signum: int, _frame: object) -> None:
        signals.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        server, thread = start_http_server(port, addr=address, registry=registry)
    except OSError as error:
        raise GuardError(f"cannot listen on {address}:{port}: {error.strerror}") from None
    logging.getLogger("guard.metrics").info(
        "serving http://%s:%d/metrics", address, server.server_port
    )
    # The series that read history are read now, while nobody waits, so that no scrape has to.
    collector.start_warm_up()
    stop.wait()
    server.shutdown()
    thread.join(timeout=5)
    collector.close()
    if signal.SIGINT in signals:  # Ctrl-C: 130, as README's table says (SIGTERM: 0)
        ctx.exit(EXIT_INTERRUPTED)
