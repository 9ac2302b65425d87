"""A rule rolled out company by company: a company's override of a rule's stage or mode
(guard.rule_company_stages), set for named companies, for a stable percentage of them, or
cleared. I3's commit-time flag check and I4's rollback of phantom bookings (guard.reconcile)
read the effective value per company (guard.effective_rule_setting)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import psycopg

from guard import queries
from guard.connection import scalar
from guard.errors import GuardError

Setting = Literal["stage", "mode"]
STAGES = ("observe", "correct", "enforce")
MODES = ("correct", "reject")


def change_override(
    conn: psycopg.Connection[Any],
    rule: str,
    setting: Setting,
    value: str | None,
    companies: Sequence[int],
    percent: int | None,
) -> list[int]:
    """Give `value` for the rule's stage or mode to the named companies, to a percentage of every
    company (by guard.rollout_bucket), or, with neither, to the rule itself (everyone); value
    None drops the override of the named companies, or of a percentage of them. The companies
    changed."""
    targets = (list(companies) or None, percent)
    if value is None:
        return list(scalar(conn, queries.ROLLOUT_CLEAR, (rule, setting, *targets)))
    return list(scalar(conn, queries.ROLLOUT_SET, (rule, setting, value, *targets)))


OVERRIDE_COLUMNS = [
    "company_id",
    "company_name",
    "stage",
    "mode",
    "effective_stage",
    "effective_mode",
    "set_by",
    "set_at",
]


def describe_rule(conn: psycopg.Connection[Any], rule: str) -> dict[str, Any]:
    """The rule's own stage and mode, and every company that overrides them."""
    row = conn.execute(queries.RULE_STATE, (rule,)).fetchone()
    if row is None:
        raise GuardError(f"rule {rule} does not exist (`guard rules list` names every rule)")
    stage, mode, enabled, by_company = row[:4]
    overrides = [
        dict(zip(OVERRIDE_COLUMNS, row, strict=True))
        for row in conn.execute(queries.RULE_OVERRIDES, (rule,)).fetchall()
    ]
    return {
        "rule": rule,
        "stage": stage,
        "mode": mode,
        "enabled": enabled,
        "rollout_by_company": by_company,
        "companies_overridden": len(overrides),
        "stage_overridden": sum(1 for o in overrides if o["stage"] is not None),
        "mode_overridden": None
        if mode is None
        else sum(1 for o in overrides if o["mode"] is not None),
        "overrides": overrides,
    }


LIST_COLUMNS = ["rule", "stage", "mode", "enabled", "companies_overridden"]


def list_rules(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every rule with its own stage and mode and how many companies override them."""
    return [
        dict(zip(LIST_COLUMNS, row, strict=True))
        for row in conn.execute(queries.RULE_LIST).fetchall()
    ]
