"""Hostile text in the data: every command that prints values from the database or from Redis
prints them as text (issue 31, items 12 and 13).

A corpus of hostile strings (rich markup, Slack mentions and links, ANSI and OSC 8 escape codes,
`|`, line breaks, bidi overrides, every NUL-free C0 and some C1 controls, Markdown, a very long
value, a phone number) is written into each text column the application or an operator writes and
a command shows. The commands are found by walking the Click tree: a leaf must be named in
DATA_CASES (what it shows from data, exercised here) or in SHOWS_NO_FREE_TEXT (why not), so a new
command fails `test_every_command_is_classified` until somebody decides. Each command must exit
0, print no traceback and no raw control or bidi character, show each value as its visible
escape (`guard.redact.visible`; Markdown cells `markdown_cell`), and `--json` must return each
value exactly. Real PostgreSQL (a migrated clone) and a real Redis; `guard` runs in-process with
colour allowed, so click does not strip escape codes that a terminal would receive."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from guard.cli import main
from guard.cli.output import compact_json
from guard.ops.daily_report import markdown_cell
from guard.redact import visible
from tests.cli.test_hostile_input import LEAVES
from tests.support.redis_server import RedisServer

PHONE = "+49 170 1234567"
# PHONE as guard.mask_phone_numbers shows it (alert messages and details)
MASKED_PHONE = "+49 17* ****567"
HOSTILE_TEXT = [
    "[bold]x",
    "[/]",
    "[link=https://evil.example]click[/link]",
    "[red]operator reason[/red] [",
    "<!channel> call me",
    "<https://evil.example|click here>",
    "\x1b[31mred\x1b[0m and \x1b[2J cleared",
    "\x1b]8;;https://evil.example\x1b\\hidden link\x1b]8;;\x1b\\",
    "\x1b]0;terminal title\x07",
    "a | b | c",
    "line one\nline two\r\nline three",
    "carriage\rreturn",
    "\u202eexe.txt\u202c",
    "\u2066isolate\u2069 \u202aembed\u202c \u200fmark",
    "".join(chr(code) for code in range(1, 32)) + "\x7f\x85\x9b",  # NUL cannot be stored
    "*bold* _em_ `code` &#x202e; <b>html</b> \\ ~strike~",
    "long " + "x" * 5_000,
    PHONE,
]

# The commands whose output holds no free text from data, and why (the ones that do are in
# DATA_CASES). A command added later is in neither and fails test_every_command_is_classified.
SHOWS_NO_FREE_TEXT = {
    "breaker configure": "key (validate_key: [A-Za-z0-9_.:-/]) and numbers",
    "breaker disable": "key, action, state, numbers; the reason is shown by `breaker show`",
    "breaker force-close": "key, action, state, numbers; the reason is shown by `breaker show`",
    "breaker list": "key (validate_key), state, counters, rules",
    "breaker reset": "key, action, state, numbers; the reason is shown by `breaker show`",
    "breaker trip": "key, action, state, numbers; the reason is shown by `breaker show`",
    "calendar reconcile": (
        "counts and ids; the calendar's booking uids come from the user's client, not from the"
        " database, and are printed through emit_table's cells (visible())"
    ),
    "check": "check and rule ids from Booking Guard's own catalogue, counts",
    "reconcile": "action names, counts",
    "db apply": "migration ids (file names shipped with Booking Guard)",
    "db rollback": "migration ids, table and column names of the schema",
    "db status": "migration ids, states, the role that applied them",
    "db validate": "rule and constraint names of the schema, counts",
    "db verify": "catalog differences and login names",
    "demo": "its own sample data",
    "alerts test": "the channel's name, the sender's user@host and the time; no database",
    "metrics": "Prometheus exposition: label values are escaped by prometheus_client",
    "jobs run": "guard.run_job's message about a job; the error text is shown by `jobs status`",
    "rules list": "rule ids, stages and modes from Booking Guard's own catalogue, counts",
    "rules show": "the rule's id, stage and mode; company ids, values and the login that set them",
    "rules stage": "the rule id, the stage and a count of companies",
    "rules mode": "the rule id, the mode and a count of companies",
}

Invoke = Callable[[list[str]], tuple[int, str, str]]
_UNSAFE_OUTPUT = [chr(c) for c in range(0x20) if chr(c) != "\n"] + [
    *(chr(c) for c in range(0x7F, 0xA0)),
    "\u061c",
    "\u200e",
    "\u200f",
    "\u2028",
    "\u2029",
    *(chr(c) for c in range(0x202A, 0x202F)),
    *(chr(c) for c in range(0x2066, 0x206A)),
]


@dataclass(frozen=True)
class Case:
    """One text column shown by one command: how to write the corpus into it, and the
    commands that show it as text and as JSON."""

    command: str
    column: str
    seed: Callable[[str, str], None]  # (database url, redis url): writes every HOSTILE_TEXT
    text_argv: list[str]
    json_argv: list[str] | None
    shown_as: Callable[[str], str] = visible  # how a value appears in the text output
    text_runs: Callable[[str, str, Invoke], list[tuple[int, str, str]]] | None = None
    # An alert channel, not --json: its messages collapse whitespace, shorten long text and mask
    # phone numbers (guard.ops.dispatch.message), so only the values it leaves alone come back
    # exact.
    alert_channel: bool = False
    # Phone numbers masked in text and JSON (guard alerts): PHONE comes back as MASKED_PHONE.
    masks_phones: bool = False


def _unless_phone(value: str) -> str:
    return visible(MASKED_PHONE if value == PHONE else value)


def _alerts(url: str, _redis: str) -> None:
    """One alert per value, its message and a detail holding the value."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        for number, value in enumerate(HOSTILE_TEXT):
            conn.execute(
                "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type,"
                " entity_id, severity, message, details) VALUES (%s, 'booking_rolled_back', 1,"
                " 'call', %s, 'high', %s, %s::jsonb)",
                (f"booking_rolled_back:call:{number}", number, value, json.dumps({"note": value})),
            )


def _alert_show_runs(url: str, redis: str, invoke: Invoke) -> list[tuple[int, str, str]]:
    _alerts(url, redis)
    with psycopg.connect(url, autocommit=True) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM guard.alerts ORDER BY id")]
    return [invoke(["alerts", "show", str(alert_id)]) for alert_id in ids]


def _review_show_runs(url: str, redis: str, invoke: Invoke) -> list[tuple[int, str, str]]:
    _review_items(url, redis)
    with psycopg.connect(url, autocommit=True) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM guard.review_items ORDER BY id")]
    return [invoke(["review", "show", str(item_id)]) for item_id in ids]


def _companies(url: str, _redis: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for number, name in enumerate(HOSTILE_TEXT, start=1):
            conn.execute("INSERT INTO companies (id, name) VALUES (%s, %s)", (number, name))


def _bound_companies(url: str, redis: str) -> None:
    _companies(url, redis)
    with psycopg.connect(url, autocommit=True) as conn:
        for number in range(1, len(HOSTILE_TEXT) + 1):
            conn.execute("SELECT guard.tenant_grant('guard_reporting', %s)", (number,))


def _review_details(value: str) -> dict[str, str]:
    # what reconcile and guard.rollback_booking put there: the call's booking id and reason
    return {"booking_id": value, "booking_failure_reason": value}


def _review_items(url: str, _redis: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        for value in HOSTILE_TEXT:
            conn.execute(
                "SELECT guard.enqueue_review(1, NULL, NULL, 'other', %s::jsonb)",
                (json.dumps(_review_details(value)),),
            )


def _claimed_items(url: str, redis: str) -> None:
    _review_items(url, redis)
    with psycopg.connect(url, autocommit=True) as conn:
        for value in HOSTILE_TEXT:  # the --actor label a reviewer gives
            conn.execute("SELECT count(*) FROM guard.review_claim(%s, 1)", (value,))


def _nothing(_url: str, _redis: str) -> None:
    pass


def _report_day() -> str:
    return str(datetime.now(UTC).date() - timedelta(days=1))


def _review_runs(path: list[str], extra: list[str]) -> Callable[..., list[Any]]:
    """One run per value: the value is the command's own --actor/--note, on a fresh item."""

    def runs(url: str, _redis: str, invoke: Invoke) -> list[tuple[int, str, str]]:
        results = []
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
            for value in HOSTILE_TEXT:
                row = conn.execute(
                    "SELECT guard.enqueue_review(1, NULL, NULL, 'other', %s::jsonb)",
                    (json.dumps(_review_details(value)),),
                ).fetchone()
                assert row is not None
                argv = [a.replace("{id}", str(row[0])) for a in [*path, *extra]]
                results.append(invoke([*argv, "--actor", value]))
        return results

    return runs


def _breaker_runs(url: str, _redis: str, invoke: Invoke) -> list[tuple[int, str, str]]:
    results = []
    for number, value in enumerate(HOSTILE_TEXT):
        key = f"hostile:{number}"
        code, _, err = invoke(["breaker", "trip", key, "--create", "--reason", value])
        assert code == 0, err
        results.append(invoke(["breaker", "show", key]))
    return results


def _jobs_runs(url: str, _redis: str, invoke: Invoke) -> list[tuple[int, str, str]]:
    """A failed run's error text (it quotes what the job saw) is printed below the table."""
    results = []
    with psycopg.connect(url, autocommit=True) as conn:
        for number, value in enumerate(HOSTILE_TEXT):
            started = datetime.now(UTC) + timedelta(minutes=number)
            conn.execute(
                "INSERT INTO guard.job_runs (job_name, started_at, finished_at, status, error,"
                " duration_ms) VALUES ('detect', %s, %s, 'failed', %s, 1)",
                (started, started, value),
            )
            results.append(invoke(["jobs", "status"]))
    return results


def _tenant_grant_runs(url: str, _redis: str, invoke: Invoke) -> list[tuple[int, str, str]]:
    """Role names are printed by grant and revoke; a role name holds at most 63 bytes."""
    results = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        for number, value in enumerate(HOSTILE_TEXT):
            role = _role_name(value, number)
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
            try:
                for verb in ("grant", "revoke"):
                    code, out, err = invoke(["tenant", verb, role, "1"])
                    # the value shown is the role name, so compare against it
                    results.append((code, out.replace(visible(role), visible(value)), err))
            finally:
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    return results


def _role_name(value: str, number: int) -> str:
    suffix = f" #{number}"
    encoded = value.encode()[: 63 - len(suffix)]
    return encoded.decode("utf-8", "ignore") + suffix


DATA_CASES: dict[str, list[Case]] = {
    "alerts list": [
        Case(
            "alerts list",
            "alerts.message",
            _alerts,
            ["alerts", "list", "--all"],
            ["alerts", "list", "--all", "--json"],
            shown_as=_unless_phone,
            masks_phones=True,
        )
    ],
    "alerts show": [
        Case(
            "alerts show",
            "alerts.message and details (as compact JSON)",
            _nothing,
            [],
            None,
            shown_as=lambda value: visible(
                compact_json({"note": MASKED_PHONE if value == PHONE else value})
            ),
            text_runs=_alert_show_runs,
        )
    ],
    "review list": [
        Case(
            "review list",
            "review_items.details (calls.booking_id, booking_failure_reason)",
            _review_items,
            ["review", "list", "--limit", "100"],
            ["review", "list", "--limit", "100", "--json"],
            shown_as=lambda value: visible(compact_json(_review_details(value))),
        ),
        Case(
            "review list",
            "review_items.claimed_by (--actor)",
            _claimed_items,
            ["review", "list", "--limit", "100"],
            ["review", "list", "--limit", "100", "--json"],
        ),
    ],
    "review show": [
        Case(
            "review show",
            "review_items.details",
            _nothing,
            [],
            None,
            shown_as=lambda value: visible(compact_json(_review_details(value))),
            text_runs=_review_show_runs,
        )
    ],
    "review claim": [
        Case(
            "review claim",
            "review_items.details and claimed_by (--actor, also the title)",
            _nothing,
            [],
            None,
            shown_as=lambda value: visible(compact_json(_review_details(value))),
            text_runs=_review_runs(["review", "claim"], []),
        )
    ],
    "review resolve": [
        Case(
            "review resolve",
            "review_items.details",
            _nothing,
            [],
            None,
            shown_as=lambda value: visible(compact_json(_review_details(value))),
            text_runs=_review_runs(["review", "resolve", "{id}"], ["--note", "done"]),
        )
    ],
    "review dismiss": [
        Case(
            "review dismiss",
            "review_items.details",
            _nothing,
            [],
            None,
            shown_as=lambda value: visible(compact_json(_review_details(value))),
            text_runs=_review_runs(["review", "dismiss", "{id}"], ["--note", "none"]),
        )
    ],
    "tenant list": [
        Case(
            "tenant list",
            "companies.name",
            _bound_companies,
            ["tenant", "list"],
            ["tenant", "list", "--json"],
        )
    ],
    "tenant grant": [
        Case("tenant grant", "role name", _nothing, [], None, text_runs=_tenant_grant_runs)
    ],
    "tenant revoke": [
        Case("tenant revoke", "role name", _nothing, [], None, text_runs=_tenant_grant_runs)
    ],
    "report": [
        Case(
            "report",
            "companies.name (text)",
            _companies,
            ["report", "--date", _report_day()],
            ["report", "--date", _report_day(), "--json"],
        ),
        Case(
            "report",
            "companies.name (Markdown)",
            _companies,
            ["report", "--date", _report_day(), "--markdown"],
            None,
            shown_as=markdown_cell,
        ),
    ],
    "breaker show": [
        Case(
            "breaker show",
            "breaker_events.reason (--reason)",
            _nothing,
            [],
            None,
            text_runs=_breaker_runs,
        )
    ],
    "jobs status": [
        Case("jobs status", "job_runs.error", _nothing, [], None, text_runs=_jobs_runs)
    ],
    "watch": [
        Case(
            "watch",
            "calls.booking_failure_reason (alert details, stdout channel)",
            lambda url, _redis: _failed_calls(url),
            [],
            ["watch", "--once", "--channel", "stdout"],
            alert_channel=True,
        )
    ],
}


def _failed_calls(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        for value in HOSTILE_TEXT:
            conn.execute(
                "INSERT INTO calls (company_id, direction, session_outcome, booking_failed,"
                " booking_failure_reason, requires_manual_processing)"
                " VALUES (1, 'inbound', 'creation_failed', TRUE, %s, TRUE)",
                (value,),
            )
        conn.execute("SELECT count(*) FROM guard.detect()")


CASES = [case for cases in DATA_CASES.values() for case in cases]


def test_every_command_is_classified() -> None:
    leaves = {" ".join(path) for path, _ in LEAVES}
    unclassified = sorted(leaves - set(DATA_CASES) - set(SHOWS_NO_FREE_TEXT))
    assert not unclassified, (
        f"commands neither in DATA_CASES nor in SHOWS_NO_FREE_TEXT: {unclassified}; say what each"
        " prints from data"
    )
    stale = sorted((set(DATA_CASES) | set(SHOWS_NO_FREE_TEXT)) - leaves)
    assert not stale, f"classified commands that no longer exist: {stale}"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def invoke(db_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.chdir(tmp_path)
    env = {"GUARD_DATABASE_URL": db_url, "GUARD_REDIS_URL": redis_url, "GUARD_DEBUG": None}

    def run(argv: list[str]) -> tuple[int, str, str]:
        # color=True: click must not strip escape codes a terminal would receive
        result = CliRunner().invoke(main, argv, env=env, color=True)
        return result.exit_code, result.stdout, result.stderr

    return run


def _assert_clean(where: str, code: int, out: str, err: str) -> None:
    assert "Traceback" not in out + err, f"{where} printed a traceback:\n{err}"
    assert code == 0, f"{where} exited {code}: {err}"
    for stream, text in (("stdout", out), ("stderr", err)):
        raw = sorted({repr(char) for char in text if char in _UNSAFE_OUTPUT})
        assert not raw, f"{where} wrote raw control/bidi characters to {stream}: {raw}"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("case", CASES, ids=[f"{c.command}: {c.column}" for c in CASES])
def test_hostile_text_is_printed_as_text(
    case: Case, db_url: str, redis_url: str, invoke: Invoke
) -> None:
    case.seed(db_url, redis_url)
    where = f"guard {case.command} ({case.column})"
    if case.text_runs is not None:
        runs = case.text_runs(db_url, redis_url, invoke)
        assert len(runs) >= len(HOSTILE_TEXT)
        outputs = [run[1] for run in runs]
        for run in runs:
            _assert_clean(where, *run)
        for value in HOSTILE_TEXT:
            expected = case.shown_as(value)
            assert any(expected in out for out in outputs), (
                f"{where}: {value[:60]!r} not shown as {expected[:80]!r}"
            )
    elif case.text_argv:
        code, out, err = invoke(case.text_argv)
        _assert_clean(where, code, out, err)
        for value in HOSTILE_TEXT:
            expected = case.shown_as(value)
            assert expected in out, f"{where}: {value[:60]!r} not shown as {expected[:80]!r}"
    if case.json_argv is not None:
        code, out, err = invoke(case.json_argv)
        _assert_clean(f"{where} --json", code, out, err)
        if case.alert_channel:
            found = set(_strings([json.loads(line) for line in out.splitlines() if line]))
            assert PHONE not in out, f"{where}: a phone number left unmasked"
            exact = [
                v for v in HOSTILE_TEXT if v == " ".join(v.split()) and len(v) < 100 and v != PHONE
            ]
        elif case.masks_phones:
            found = set(_strings(json.loads(out)))
            assert PHONE not in out, f"{where}: a phone number left unmasked"
            exact = [MASKED_PHONE if v == PHONE else v for v in HOSTILE_TEXT]
        else:
            found = set(_strings(json.loads(out)))
            exact = HOSTILE_TEXT
        missing = [value[:60] for value in exact if value not in found]
        assert not missing, f"{where} --json lost or changed: {missing}"


def test_markdown_report_keeps_one_row_per_company(db_url: str, invoke: Invoke) -> None:
    _companies(db_url, "")
    code, out, err = invoke(["report", "--date", _report_day(), "--markdown"])
    _assert_clean("guard report --markdown", code, out, err)
    lines = out.splitlines()
    header = lines.index("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
    rows = []
    for line in lines[header + 1 :]:
        if not line:
            break
        rows.append(line)
    assert len(rows) == len(HOSTILE_TEXT), "a company name broke a row of the table"
    for row in rows:
        # an escaped backslash first, so that `\\|` counts as a backslash and a separator
        cells = row.replace("\\\\", "").replace("\\|", "").split("|")
        assert len(cells) == 14, f"{row[:120]!r} is not one row of 12 cells"


def test_a_claim_whose_row_holds_markup_exits_0_and_is_committed(
    db_url: str, invoke: Invoke
) -> None:
    """Issue 31 item 12: `[/]` in an item made `review claim` exit 1 after committing the claim."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO companies (id, name) VALUES (1, 'A')")
        conn.execute(
            "SELECT guard.enqueue_review(1, NULL, NULL, 'other', %s::jsonb)",
            (json.dumps({"booking_failure_reason": "[/]"}),),
        )
    code, out, err = invoke(["review", "claim", "--actor", "[red]bob"])
    _assert_clean("guard review claim", code, out, err)
    assert "Claimed by [red]bob" in out and "[/]" in out
    with psycopg.connect(db_url) as conn:
        claimed = conn.execute("SELECT status, claimed_by FROM guard.review_items").fetchall()
    assert claimed == [("claimed", "[red]bob")]
