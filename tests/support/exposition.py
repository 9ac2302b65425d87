"""Booking Guard's Prometheus exposition as a test reads it: one scrape of a collector of its
own (no cache), and the value of one series in it."""

from __future__ import annotations

import re

from prometheus_client import generate_latest

from guard.ops.metrics import GuardCollector, registry_for


def scrape(db_url: str) -> str:
    collector = GuardCollector(db_url, cache_interval_s=0)
    try:
        return generate_latest(registry_for(collector)).decode()
    finally:
        collector.close()


def sample(text: str, series: str) -> float:
    """The value of `series` (its name and labels as exposed), which must be in `text`."""
    match = re.search(r"^" + re.escape(series) + r" (\S+)$", text, re.MULTILINE)
    assert match, f"{series} not in the exposition"
    return float(match.group(1))
