"""Rules stored with the circuit: processes configured differently agree on one circuit, are
told that they differ, and `guard breaker configure` / `list` use the stored rules."""

from __future__ import annotations

import json
import multiprocessing
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

import pytest

from guard.breaker import BreakerConfig, CircuitBreaker, CircuitOpenError, SharedRules, State
from tests.breaker import mp_workers
from tests.support.cli import BreakerCli

CONTEXT = multiprocessing.get_context("spawn")


def _start(
    redis_url: str, key: str, threshold: int, cooldown: float
) -> tuple[BaseProcess, Event, Event, Queue[Any]]:
    go, check, out = CONTEXT.Event(), CONTEXT.Event(), CONTEXT.Queue()
    process = CONTEXT.Process(
        target=mp_workers.configured_worker,
        args=(redis_url, key, threshold, cooldown, go, check, out),
    )
    process.start()
    # the queue carries "ready", then the worker's report (a dict)
    return process, go, check, out


def test_two_processes_with_different_configs_agree_on_the_circuit(
    redis_url: str, key: str
) -> None:
    # The first writer: threshold 2, cooldown 30 s. The second: threshold 5, cooldown 0.3 s.
    first = _start(redis_url, key, 2, 30.0)
    second = _start(redis_url, key, 5, 0.3)
    for _process, go, _check, out in (first, second):
        go.set()
        assert out.get(timeout=60) == "ready"
    reports = []
    for process, _go, check, out in (first, second):
        check.set()
        reports.append(out.get(timeout=60))
        process.join(timeout=30)
        assert process.exitcode == 0
    writer, other = reports

    assert writer["outcomes"] == ["ok"] and writer["warnings"] == []
    assert writer["divergences"] == 0
    # The second process's calls follow the stored threshold (2), not its own (5)...
    assert other["outcomes"] == ["failed", "failed", "rejected", "rejected", "rejected"]
    # ...and the stored cooldown (30 s), not its own (0.3 s).
    assert other["after_own_cooldown"] == "rejected"
    assert writer["state"] == other["state"] == "open"
    assert writer["generation"] == other["generation"] == 1
    assert writer["rules"] == other["rules"] == tuple(SharedRules(2, 2, 30_000))
    # It was told, once: a log line naming both configurations, and the metric.
    assert len(other["warnings"]) == 1
    assert "configured with 5/2/0.3s but the circuit stores 2/2/30s;" in other["warnings"][0]
    assert other["divergences"] == 1


def test_configure_sets_rules_for_every_process_and_list_uses_them(
    cli: BreakerCli, redis_url: str, key: str
) -> None:
    result = cli("configure", key, "--failure-threshold", "1", "--cooldown", "600", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "key": key,
        "failure_threshold": 1,
        "success_threshold": 2,
        "cooldown_seconds": 600.0,
        "cooldown_growth_factor": None,  # a constant cooldown
        "max_cooldown_seconds": None,
        "window_type": None,  # no failure-rate window: the consecutive rule alone
        "window_size": None,
        "minimum_calls": None,
        "failure_rate_threshold": None,
        "slow_call_seconds": None,
        "slow_call_rate_threshold": None,
        "previous": None,
    }
    # A process configured with the defaults (3 failures, 30 s) follows the stored rules.
    breaker = CircuitBreaker(key, BreakerConfig(call_timeout_seconds=None), redis_url=redis_url)

    def down() -> None:
        raise ConnectionError("booking API down")

    with pytest.raises(ConnectionError):
        breaker.call(down)
    assert breaker.state is State.OPEN
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.call(down)
    retry_after = rejected.value.retry_after
    assert retry_after is not None and retry_after > 590

    listed = cli("list", "--json")
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    # Time to the next probe: the circuit's own cooldown on Redis's clock, not the CLI's 30 s.
    assert 590 < row["recovers_in_seconds"] <= 600
    assert (row["failure_threshold"], row["cooldown_seconds"]) == (1, 600.0)
    assert "1/2/600s" in cli("show", key).output

    again = cli("configure", key, "--cooldown", "5", "--json")
    assert json.loads(again.output)["previous"] == "1/2/600s"
    [row] = json.loads(cli("list", "--json").output)
    assert row["recovers_in_seconds"] <= 5


def test_configure_needs_something_to_set(cli: BreakerCli, key: str) -> None:
    result = cli("configure", key)
    assert result.exit_code == 1
    assert result.stderr.startswith("guard: error: nothing to configure")
