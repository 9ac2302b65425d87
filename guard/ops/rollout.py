"""A rule rolled out company by company: a company's override of a rule's stage or mode
(guard.rule_company_stages), set for named companies, for a stable percentage of them, or
cleared. The commit-time flag check reads the effective value per company
(guard.effective_rule_setting); `guard rules` is the command line over this module.

Every change runs in the caller's transaction and checks what it is given before it writes: an
unknown rule or company changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

from guard import queries
from guard.errors import GuardError

Setting = Literal["stage", "mode"]
STAGES = ("observe", "correct", "enforce")
MODES = ("correct", "reject")
# The rules whose per-row check reads a company's stage and mode; the CHECK
# rule_company_stages_rule_reads_company (sql/tables/guard.rule_company_stages.sql) says the same.
ROLLOUT_RULES = ("I3_appointment_flags",)
# How many unknown company ids an error names before it says "and N more".
_NAMED_IDS = 5


@dataclass(frozen=True)
class Target:
    """Which companies a change reaches: named ones, a percentage of every company (by
    guard.rollout_bucket), or none of them but the rule itself (everyone)."""

    companies: tuple[int, ...] = ()
    percent: int | None = None
    everyone: bool = False


def _rule(conn: psycopg.Connection[Any], rule: str) -> tuple[str, str, bool, list[str]]:
    row = conn.execute(queries.RULE_STATE, (rule,)).fetchone()
    if row is None:
        raise GuardError(f"rule {rule} does not exist (`guard rules list` names every rule)")
    return row[0], row[1], row[2], list(row[3])


def _lock_for_change(conn: psycopg.Connection[Any]) -> None:
    """One rollout change at a time (SHARE ROW EXCLUSIVE conflicts with itself, not with the
    commit-time check's reads). It needs a write privilege on the table, so a login that may not
    change the rollout is refused here, before anything it could not see misleads it."""
    conn.execute(queries.LOCK_RULE_COMPANY_STAGES)


def _require_rollout_rule(rule: str) -> None:
    if rule not in ROLLOUT_RULES:
        raise GuardError(
            f"rule {rule} cannot be rolled out by company: only the commit-time check of"
            f" {', '.join(ROLLOUT_RULES)} reads a company's stage and mode"
        )


def _require_companies(conn: psycopg.Connection[Any], companies: tuple[int, ...]) -> None:
    row = conn.execute(
        queries.UNKNOWN_COMPANIES,
        (list(companies),),
    ).fetchone()
    unknown: list[int] = list(row[0]) if row and row[0] else []
    if unknown:
        named = ", ".join(str(c) for c in unknown[:_NAMED_IDS])
        more = f" and {len(unknown) - _NAMED_IDS} more" if len(unknown) > _NAMED_IDS else ""
        raise GuardError(f"company {named}{more} does not exist; nothing changed")


def _selected(target: Target) -> tuple[sql.Composable, tuple[Any, ...]]:
    """A WHERE condition on public.companies AS c for the target's companies."""
    condition, params = queries.companies_condition(target.percent, target.companies)
    return sql.SQL(condition), params


def set_override(
    conn: psycopg.Connection[Any], rule: str, setting: Setting, value: str, target: Target
) -> list[int]:
    """Give the target's companies `value` for the rule's stage or mode (or the rule itself, for
    everyone: no company is named then); the ids of the companies written, in order."""
    allowed = STAGES if setting == "stage" else MODES
    if value not in allowed:
        raise GuardError(f"{setting} must be one of {', '.join(allowed)}, not {value!r}")
    _lock_for_change(conn)
    _, _, _, constraints = _rule(conn, rule)
    _require_rollout_rule(rule)
    if target.everyone:
        if setting == "stage" and constraints:
            raise GuardError(f"the stage of {rule} follows its constraints (`guard db validate`)")
        conn.execute(
            sql.SQL(queries.UPDATE_RULE_COLUMN).format(sql.Identifier(setting)),
            (value, rule),
        )
        return []
    if target.companies:
        _require_companies(conn, target.companies)
    where, params = _selected(target)
    query = sql.SQL(queries.UPSERT_RULE_OVERRIDE).format(
        column=sql.Identifier(setting), where=where
    )
    return sorted(row[0] for row in conn.execute(query, (rule, value, *params)))


def clear_override(
    conn: psycopg.Connection[Any], rule: str, setting: Setting, target: Target
) -> list[int]:
    """Drop the stage or mode override of the target's companies (every company of the rule
    when the target names none); the ids of the companies that had one, in order."""
    _lock_for_change(conn)
    _rule(conn, rule)
    if target.companies:
        _require_companies(conn, target.companies)
    reached: sql.Composable = sql.SQL("")
    params: tuple[Any, ...] = ()
    if target.companies or target.percent is not None:
        where, params = _selected(target)
        reached = sql.SQL(queries.OVERRIDES_OF_COMPANIES).format(where)
    column = sql.Identifier(setting)
    other = sql.Identifier("mode" if setting == "stage" else "stage")
    # A row left without any override goes; one that still overrides the other setting stays.
    gone = conn.execute(
        sql.SQL(queries.DELETE_RULE_OVERRIDES).format(column=column, other=other, reached=reached),
        (rule, *params),
    ).fetchall()
    kept = conn.execute(
        sql.SQL(queries.CLEAR_RULE_OVERRIDE_COLUMN).format(column=column, reached=reached),
        (rule, *params),
    ).fetchall()
    return sorted(row[0] for row in [*gone, *kept])


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
    stage, mode, enabled, _ = _rule(conn, rule)
    overrides = [
        dict(zip(OVERRIDE_COLUMNS, row, strict=True))
        for row in conn.execute(queries.RULE_OVERRIDES, (rule,)).fetchall()
    ]
    return {
        "rule": rule,
        "stage": stage,
        "mode": mode,
        "enabled": enabled,
        "rollout_by_company": rule in ROLLOUT_RULES,
        "companies_overridden": len(overrides),
        "stage_overridden": sum(1 for o in overrides if o["stage"] is not None),
        "mode_overridden": sum(1 for o in overrides if o["mode"] is not None),
        "overrides": overrides,
    }


LIST_COLUMNS = ["rule", "stage", "mode", "enabled", "companies_overridden"]


def list_rules(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every rule with its own stage and mode and how many companies override them."""
    return [
        dict(zip(LIST_COLUMNS, row, strict=True))
        for row in conn.execute(queries.RULE_LIST).fetchall()
    ]
