"""docs/breaker-protocol.md names every field of a circuit's hash that codec.py defines, and
every script file the Python client loads: a client in another language follows that page."""

from __future__ import annotations

import re
from pathlib import Path

from guard.breaker import codec
from guard.breaker import redis_store as lua
from guard.breaker.state import PROBE_LEASE_WITHOUT_TIMEOUT_MS, BreakerConfig

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "breaker-protocol.md").read_text()
SCRIPTS = ROOT / "guard" / "breaker" / "scripts"


def _documented_fields() -> set[str]:
    table = DOC.split("## The hash", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([a-z]+)`", line.split(" | ", 1)[0]))
    return names


def test_every_hash_field_is_documented() -> None:
    assert _documented_fields() == set(codec.FIELDS)


def test_every_script_file_is_named() -> None:
    files = {p.name for p in SCRIPTS.glob("*.lua")}
    assert files, "no scripts found"
    assert {name for name in files if name not in DOC} == set()


def test_the_bounds_written_into_the_scripts_are_documented_and_the_php_client_uses_them() -> None:
    table = DOC.split("| name | value |", 1)[1].split("\n\n", 1)[0]
    documented = dict(re.findall(r"\| `([A-Z_]+)` \| (\d+) \|", table))
    expected = {name: str(value) for name, value in lua._CONSTANTS.items()}
    assert documented == expected
    php = (ROOT / "tests" / "laravel" / "breaker" / "CircuitBreaker.php").read_text()
    assert dict(re.findall(r"'([A-Z_]+)' => '(\d+)'", php)) == expected


def test_the_probe_lease_guidance_matches_the_python_client() -> None:
    guidance = DOC.split("**The probe lease.**", 1)[1].split("\n\n", 1)[0]
    assert f"pass {PROBE_LEASE_WITHOUT_TIMEOUT_MS}" in guidance
    assert BreakerConfig().probe_lease_ms == PROBE_LEASE_WITHOUT_TIMEOUT_MS
    assert "call timeout + 1000" in guidance
    assert BreakerConfig(call_timeout_seconds=2.5).probe_lease_ms == 2500 + 1000
