"""`guard tenant grant|revoke|list` and `guard review` as a bound reviewer login."""

from __future__ import annotations

import json

import psycopg

from tests.security.conftest import create_login
from tests.support.cli import cli

REVIEWER = "guard_cli_reviewer"


def _seed(url: str) -> str:
    """Companies 1 and 2 with a review item each, and a reviewer login; its URL."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B')")
        admin.execute(
            "INSERT INTO calls (id, company_id, retell_call_id) VALUES (1, 1, 'a'), (2, 2, 'b')"
        )
        admin.execute("SELECT guard.enqueue_review(1, 1, NULL, 'other')")
        admin.execute("SELECT guard.enqueue_review(2, 2, NULL, 'other')")
        create_login(admin, REVIEWER, "guard_reviewer")
    return psycopg.conninfo.make_conninfo(url, user=REVIEWER)


def test_grant_list_revoke(db_url: str) -> None:
    _seed(db_url)
    code, out, _ = cli(db_url, "tenant", "grant", REVIEWER, "1", "2")
    assert code == 0
    assert out.splitlines() == [
        f"granted  {REVIEWER} -> company 1",
        f"granted  {REVIEWER} -> company 2",
    ]
    code, out, _ = cli(db_url, "tenant", "grant", REVIEWER, "2")
    assert (code, out.strip()) == (0, f"already granted  {REVIEWER} -> company 2")

    code, out, _ = cli(db_url, "tenant", "list", "--json")
    listed = json.loads(out)
    assert [(b["role_name"], b["company_id"], b["company_name"], b["logins"]) for b in listed] == [
        (REVIEWER, 1, "A", [REVIEWER]),
        (REVIEWER, 2, "B", [REVIEWER]),
    ]
    code, out, _ = cli(db_url, "tenant", "list")
    assert code == 0 and "Tenant bindings" in out and "role_name" in out

    code, out, _ = cli(db_url, "tenant", "revoke", REVIEWER, "2", "3")
    assert code == 0
    assert out.splitlines() == [
        f"revoked  {REVIEWER} -> company 2",
        f"was not granted  {REVIEWER} -> company 3",
    ]
    code, out, _ = cli(db_url, "tenant", "list", "--json")
    assert [b["company_id"] for b in json.loads(out)] == [1]


def test_errors_are_one_line_and_change_nothing(db_url: str) -> None:
    reviewer_url = _seed(db_url)
    code, out, err = cli(db_url, "tenant", "grant", "no such role", "1")
    assert (code, out, err) == (1, "", 'guard: error: role "no such role" does not exist\n')
    # all or nothing: company 99 fails, so company 1 is not granted either
    code, _, err = cli(db_url, "tenant", "grant", REVIEWER, "1", "99")
    assert (code, err) == (1, "guard: error: company 99 does not exist\n")
    code, out, _ = cli(db_url, "tenant", "list")
    assert out.startswith("No tenant bindings")
    # a reviewer cannot bind itself
    code, _, err = cli(reviewer_url, "tenant", "grant", REVIEWER, "2")
    assert code == 1 and err.startswith("guard: error: permission denied for function tenant_grant")
    assert len(err.splitlines()) == 1 and "owner role" in err


def test_review_as_a_bound_reviewer_records_its_login(db_url: str) -> None:
    reviewer_url = _seed(db_url)
    code, out, _ = cli(reviewer_url, "review", "claim", "--limit", "5", "--json")
    assert (code, json.loads(out)) == (0, [])  # bound to nothing: nothing to claim
    cli(db_url, "tenant", "grant", REVIEWER, "1")
    code, out, _ = cli(reviewer_url, "review", "claim", "--limit", "5", "--actor", "ann", "--json")
    claimed = json.loads(out)
    assert [(i["company_id"], i["claimed_by"], i["claimed_by_role"]) for i in claimed] == [
        (1, "ann", REVIEWER)
    ]
    with psycopg.connect(db_url, autocommit=True) as admin:
        other = admin.execute("SELECT id FROM guard.review_items WHERE company_id = 2").fetchone()
    assert other is not None
    code, _, err = cli(reviewer_url, "review", "dismiss", str(other[0]), "--note", "not mine")
    assert code == 1 and "is not open" in err
    code, out, _ = cli(
        reviewer_url, "review", "resolve", str(claimed[0]["id"]), "--note", "done", "--json"
    )
    assert code == 0 and json.loads(out)[0]["closed_by_role"] == REVIEWER


def test_a_dropped_roles_binding_is_listed_and_revoked_by_its_oid(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("INSERT INTO companies (id, name) VALUES (7, 'G')")
        create_login(admin, "guard_cli_gone", "guard_reporting")
        admin.execute("SELECT guard.tenant_grant('guard_cli_gone', 7)")
        oid = admin.execute("SELECT 'guard_cli_gone'::regrole::oid::text").fetchone()
        admin.execute("DROP ROLE guard_cli_gone")
    assert oid is not None
    code, out, _ = cli(db_url, "tenant", "list", "--json")
    assert [(b["role_name"], b["company_id"], b["logins"]) for b in json.loads(out)] == [
        (oid[0], 7, [])
    ]
    code, out, _ = cli(db_url, "tenant", "revoke", oid[0], "7")
    assert (code, out.strip()) == (0, f"revoked  {oid[0]} -> company 7")
    code, out, _ = cli(db_url, "tenant", "list", "--json")
    assert json.loads(out) == []


def test_binding_an_application_login_outside_the_bound_role_warns(db_url: str) -> None:
    """A multi-tenant application login bound to a company still writes every company's rows:
    the grant says so, and names the role that would confine it. The other side: a login of
    the bound application role, and a reviewer, are bound without a warning."""
    _seed(db_url)
    with psycopg.connect(db_url, autocommit=True) as admin:
        create_login(admin, "guard_cli_app", "guard_app")
        create_login(admin, "guard_cli_app_bound", "guard_app_bound")

    code, out, err = cli(db_url, "tenant", "grant", "guard_cli_app", "1")
    assert (code, out.strip()) == (0, "granted  guard_cli_app -> company 1")
    assert err.splitlines() == [
        'warning: role "guard_cli_app" is a member of the application role "guard_app" but not of'
        ' "guard_app_bound": it still reads and writes every company\'s calls, appointments,'
        " customers and services",
        "  To confine it to its companies: GRANT guard_app_bound TO guard_cli_app; a"
        " multi-tenant application login needs no binding.",
    ]
    for quiet in ("guard_cli_app_bound", REVIEWER):
        code, out, err = cli(db_url, "tenant", "grant", quiet, "1")
        assert (code, err) == (0, ""), quiet
