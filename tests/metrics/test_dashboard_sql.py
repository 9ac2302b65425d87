"""The dashboard's panels that read PostgreSQL (the reporting views) rather than Prometheus: each
query runs as the reporting login Grafana's PostgreSQL data source is documented to use
(docs/metrics.md), with Grafana's time macro expanded as Grafana expands it, and returns what
the panel promises: that login's companies only, newest first, no raw details."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import psycopg

from tests.security.conftest import (  # noqa: F401  (fixtures)
    COMPANY_A,
    connect_as,
    login_roles,
    seeded_url,
)

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = "grafana-postgresql-datasource"


def _sql_panels() -> dict[str, str]:
    dashboard = json.loads((ROOT / "docs/grafana/booking-guard.json").read_text())
    return {
        panel["title"]: target["rawSql"]
        for panel in dashboard["panels"]
        if panel["datasource"]["type"] == POSTGRES
        for target in panel["targets"]
    }


def _expand_macros(query: str) -> str:
    """Grafana's `$__timeFilter(column)`: the dashboard's range (the last 24 h) as literals."""
    return re.sub(
        r"\$__timeFilter\(([^)]+)\)",
        r"\1 BETWEEN now() - interval '24 hours' AND now()",
        query,
    )


def test_every_postgresql_panel_reads_only_reporting_views(
    seeded_url: str,  # noqa: F811
    login_roles: dict[str, str],  # noqa: F811
) -> None:
    panels = _sql_panels()
    assert set(panels) == {"Recent alerts (guard.alerts_report)"}
    with psycopg.connect(seeded_url, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message, first_seen_at, last_seen_at, details)"
            " VALUES ('old', 'cross_tenant_link', %s, 'call', 1, 'critical', 'old one',"
            " now() - interval '3 days', now() - interval '3 days', '{}'),"
            " ('new', 'cross_tenant_link', %s, 'call', 2, 'critical', 'newest',"
            " now(), now(),"
            ' \'{"note": "caller +49 30 1234567"}\')',
            (COMPANY_A, COMPANY_A),
        )
        everyone = admin.execute("SELECT DISTINCT company_id FROM guard.alerts").fetchall()
        assert len(everyone) > 1, "alerts of another company, which the panel must not show"
    with connect_as(seeded_url, login_roles["reporting"], tenant=COMPANY_A) as reporting:
        cursor = reporting.execute(_expand_macros(panels["Recent alerts (guard.alerts_report)"]))
        columns = [c.name for c in cursor.description or []]
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    assert columns == [
        "last seen",
        "severity",
        "rule",
        "check",
        "company",
        "entity",
        "status",
        "occurrences",
        "message",
    ]
    assert rows, "the reporting login sees its company's alerts"
    assert {row[4] for row in rows} == {COMPANY_A}, "only the login's company"
    assert rows[0][8] == "newest" and rows[0][2] == "I5_tenant_link"
    assert "old one" not in {row[8] for row in rows}, "outside the dashboard's time range"
    assert [row[0] for row in rows] == sorted((row[0] for row in rows), reverse=True)
    assert "1234567" not in repr(rows)
