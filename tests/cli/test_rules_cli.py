"""`guard rules list|show|stage|mode`: a rule rolled out to named companies and to a stable
percentage of them (10 % then 50 % is a superset), cleared again; hostile input changes nothing;
only the owner role changes the rollout."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from tests.security.conftest import login_roles  # noqa: F401 (fixture)
from tests.support.cli import cli
from tests.support.rollout import bucket, with_companies

RULE = "I3_appointment_flags"
COMPANIES = 400


@pytest.fixture
def url(db_url: str) -> str:
    return with_companies(db_url, COMPANIES)


def _overrides(url: str, column: str = "mode") -> dict[int, Any]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT company_id, {column} FROM guard.rule_company_stages"
            f" WHERE rule_id = %s AND {column} IS NOT NULL",
            (RULE,),
        ).fetchall()
    return dict(rows)


def _state(url: str) -> list[Any]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT rule_id, company_id, stage, mode FROM guard.rule_company_stages"
            " UNION ALL SELECT id, NULL, stage, mode FROM guard.rules ORDER BY 1, 2"
        ).fetchall()


def test_percent_rollouts_grow_as_supersets_and_clear(url: str) -> None:
    code, out, err = cli(url, "rules", "mode", RULE, "reject", "--percent", "10")
    assert code == 0, err
    first = set(_overrides(url))
    assert first == {c for c in range(1, COMPANIES + 1) if bucket(c) < 10}
    assert 20 <= len(first) <= 60, "about 10 % of 400"
    named = ", ".join(str(c) for c in sorted(first)[:20])
    more = f" and {len(first) - 20} more (`guard rules show {RULE}`)"
    assert out == f"set  {RULE}: mode reject for {len(first)} company(ies): {named}{more}\n"

    assert cli(url, "rules", "mode", RULE, "reject", "--percent", "50")[0] == 0
    second = set(_overrides(url))
    assert first < second, "the companies of the 10 % stay in at 50 %"
    assert second == {c for c in range(1, COMPANIES + 1) if bucket(c) < 50}

    code, out, _ = cli(url, "rules", "show", RULE, "--json")
    shown = json.loads(out)
    assert code == 0
    assert (shown["mode"], shown["companies_overridden"], shown["mode_overridden"]) == (
        "correct",
        len(second),
        len(second),
    )
    assert {o["company_id"] for o in shown["overrides"]} == second
    assert {o["effective_mode"] for o in shown["overrides"]} == {"reject"}

    assert cli(url, "rules", "mode", RULE, "reject", "--percent", "100")[0] == 0
    assert len(_overrides(url)) == COMPANIES

    code, out, _ = cli(url, "rules", "mode", RULE, "--clear", "--percent", "50")
    assert code == 0
    assert out.startswith(f"cleared  {RULE}: the mode override of {len(second)} company(ies): ")
    assert set(_overrides(url)) == set(range(1, COMPANIES + 1)) - second
    assert cli(url, "rules", "mode", RULE, "--clear")[0] == 0
    assert _overrides(url) == {}


def test_percent_boundaries(url: str) -> None:
    """Company 3's bucket is 10: out at 10 %, in at 11 %. 0 % takes nobody, 100 % everybody."""
    assert bucket(3) == 10
    assert cli(url, "rules", "mode", RULE, "reject", "--percent", "0")[1].endswith(
        "for 0 company(ies)\n"
    )
    cli(url, "rules", "mode", RULE, "reject", "--percent", "10")
    assert 3 not in _overrides(url)
    cli(url, "rules", "mode", RULE, "reject", "--percent", "11")
    assert 3 in _overrides(url)


def test_named_companies_stage_and_mode_apart(url: str) -> None:
    named = cli(url, "rules", "stage", RULE, "observe", "--company", "8", "--company", "7")
    assert named[:2] == (0, f"set  {RULE}: stage observe for 2 company(ies): 7, 8\n")
    assert cli(url, "rules", "mode", RULE, "reject", "--company", "8")[0] == 0
    assert _overrides(url, "stage") == {7: "observe", 8: "observe"}
    assert _overrides(url, "mode") == {8: "reject"}
    # clearing the stage keeps company 8's mode override and drops company 7's row
    assert cli(url, "rules", "stage", RULE, "--clear")[0] == 0
    assert [row for row in _state(url) if row[1] is not None] == [(RULE, 8, None, "reject")]
    code, out, _ = cli(url, "rules", "show", RULE)
    assert code == 0
    assert out.splitlines()[:2] == [
        f"rule {RULE}: stage correct, mode correct, enabled",
        "companies overridden: 1 (stage 0, mode 1)",
    ]
    code, out, _ = cli(url, "rules", "list", "--json")
    listed = {r["rule"]: r for r in json.loads(out)}
    assert listed[RULE]["companies_overridden"] == 1
    assert listed["I5_tenant_link"]["companies_overridden"] == 0


def test_a_rule_staged_by_company_alone_shows_no_mode(url: str) -> None:
    """I4 is rolled out by stage alone (guard.reconcile rejects no write): `rules show` names
    no mode for it, and its JSON has none."""
    assert cli(url, "rules", "stage", "I4_booked_outcome", "observe", "--company", "3")[0] == 0
    code, out, _ = cli(url, "rules", "show", "I4_booked_outcome")
    assert code == 0
    assert out.splitlines()[:2] == [
        "rule I4_booked_outcome: stage correct, no mode (rolled back by stage), enabled",
        "companies overridden: 1 (stage 1)",
    ]
    shown = json.loads(cli(url, "rules", "show", "I4_booked_outcome", "--json")[1])
    assert (shown["mode"], shown["mode_overridden"]) == (None, None)


def test_all_companies_sets_the_rule_itself(url: str) -> None:
    cli(url, "rules", "mode", RULE, "correct", "--company", "5")
    code, out, _ = cli(url, "rules", "mode", RULE, "reject", "--all-companies")
    assert code == 0 and "the rule's own" in out
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT mode FROM guard.rules WHERE id = %s", (RULE,)).fetchone() == (
            "reject",
        )
        effective = conn.execute(
            "SELECT mode FROM guard.effective_rule_setting(%s, 5)"
            " UNION ALL SELECT mode FROM guard.effective_rule_setting(%s, 6)",
            (RULE, RULE),
        ).fetchall()
    assert effective == [("correct",), ("reject",)], "company 5's override still applies"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["mode", "no_such_rule", "reject", "--company", "1"],
            1,
            "rule no_such_rule does not exist",
        ),
        (["mode", "'; DROP TABLE calls; --", "reject", "--company", "1"], 1, "does not exist"),
        (
            ["mode", "I5_tenant_link", "reject", "--company", "1"],
            1,
            "cannot be rolled out by company",
        ),
        (
            ["mode", RULE, "reject", "--company", "1", "--company", "99999"],
            1,
            "company 99999 does not exist",
        ),
        (["mode", RULE, "reject", "--company", str(2**63)], 2, "'--company'"),
        (["mode", RULE, "reject", "--company", "x"], 2, "'--company'"),
        (["mode", RULE, "reject", "--percent", "101"], 2, "'--percent'"),
        (["mode", RULE, "reject", "--percent", "-1"], 2, "'--percent'"),
        (["mode", RULE, "reject", "--percent", str(10**20)], 2, "'--percent'"),
        (["mode", RULE, "reject"], 2, "say which companies"),
        (["mode", RULE, "reject", "--percent", "5", "--company", "1"], 2, "give one of"),
        (["mode", RULE, "strict", "--company", "1"], 2, "'[MODE]'"),
        (["mode", RULE, "reject", "--clear"], 2, "--clear takes no MODE"),
        (["mode", RULE, "--company", "1"], 2, "missing MODE"),
        (["mode", RULE, "--clear", "--all-companies"], 2, "--clear drops company overrides"),
        (["stage", RULE, "observe", "--company", "\x00"], 2, "'--company'"),
        (["stage", "", "observe", "--company", "1"], 2, "must not be empty"),
        (["stage", "I1_call_direction", "observe", "--all-companies"], 1, "cannot be rolled out"),
        (["show", "no_such_rule"], 1, "rule no_such_rule does not exist"),
        (["show", "\x00"], 2, "NUL"),
    ],
)
def test_hostile_input_is_one_line_and_changes_nothing(
    url: str, args: list[str], code: int, message: str
) -> None:
    cli(url, "rules", "mode", RULE, "reject", "--company", "2")
    before = _state(url)
    got, out, err = cli(url, "rules", *args)
    assert (got, out) == (code, "")
    assert err.startswith("guard: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert "Traceback" not in err
    assert _state(url) == before


@pytest.mark.parametrize("kind", ["application", "reporting", "reviewer"])
def test_only_the_owner_changes_the_rollout(
    url: str,
    login_roles: dict[str, str],  # noqa: F811
    kind: str,
) -> None:
    before = _state(url)
    login = psycopg.conninfo.make_conninfo(url, user=login_roles[kind])
    for args in (
        ["mode", RULE, "reject", "--company", "1"],
        ["mode", RULE, "reject", "--all-companies"],
        ["stage", RULE, "--clear"],
        ["show", RULE],
    ):
        code, out, err = cli(login, "rules", *args)
        assert (code, out) == (1, ""), (args, err)
        assert "permission denied" in err and f"you are logged in as {login_roles[kind]}" in err
        assert "needs Booking Guard's owner role" in err
    assert _state(url) == before
    owner = psycopg.conninfo.make_conninfo(url, user=login_roles["owner"])
    assert cli(owner, "rules", "mode", RULE, "reject", "--company", "1")[0] == 0
    assert _overrides(url) == {1: "reject"}
