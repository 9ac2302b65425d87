"""`guard watch`'s defaults are the dispatcher's own (DispatchSettings, what a program embedding
the dispatcher gets) and what docs/alerts.md says they are. No database."""

from __future__ import annotations

from pathlib import Path

from guard.ops.dispatch.loop import DispatchSettings
from tests.support.cli import all_commands

ROOT = Path(__file__).resolve().parents[2]

# option of `guard watch` -> (DispatchSettings field, how docs/alerts.md writes the default)
OPTIONS = {
    "batch_size": ("batch_size", "`--batch-size` ({})"),
    "lease": ("lease_s", "`--lease` ({} s)"),
    "max_attempts": ("max_attempts", "`--max-attempts` ({})"),
    "retry_base": ("backoff_base_s", "`--retry-base` ({} s)"),
    "retry_max": ("backoff_max_s", "`--retry-max` ({} s)"),
}


def test_watch_defaults_are_the_dispatchers_and_the_documented_ones() -> None:
    watch = all_commands().commands["watch"]
    defaults = {p.name: p.default for p in watch.params}
    settings = DispatchSettings()
    docs = " ".join((ROOT / "docs" / "alerts.md").read_text().split())
    for option, (field, written) in OPTIONS.items():
        value = defaults[option]
        assert value == getattr(settings, field), (option, value, getattr(settings, field))
        said = written.format(f"{value:g}" if isinstance(value, float) else value)
        assert said in docs, f"docs/alerts.md does not say {said}"
    assert defaults["send_timeout"] == settings.send_timeout_s
