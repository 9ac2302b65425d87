"""README's table of exit codes is what `guard` really does: the table is parsed, and each
situation it names is produced for real (an unreachable PostgreSQL and Redis, a login without the
role, a missing setting, ...) and its exit code compared with the table's."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.security.conftest import create_login
from tests.support.cli import guard_process
from tests.support.redis_server import RedisServer
from tests.support.seeds import seed_phantom

ROOT = Path(__file__).resolve().parents[2]
REPORTING = "guard_exit_reporting"


def readme_exit_codes() -> dict[int, str]:
    """code -> meaning, from the table after "Exit codes:" in README.md."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("Exit codes:") :].split("\n\n", 2)[1]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", table, re.MULTILINE)
    assert rows, "no exit-code table after 'Exit codes:' in README.md"
    return {int(code): meaning for code, meaning in rows}


def code_for(phrase: str) -> int:
    """The code whose meaning in README's table names `phrase`; exactly one must."""
    codes = [code for code, meaning in readme_exit_codes().items() if phrase in meaning]
    assert len(codes) == 1, f"README's exit-code table names {phrase!r} in rows {codes}"
    return codes[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


def test_the_table_parses() -> None:
    codes = readme_exit_codes()
    assert set(codes) == {0, 1, 2, 130}
    with pytest.raises(AssertionError):
        code_for("no such situation anywhere")


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.startswith("guard: error:")]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_every_situation_exits_as_the_table_says(db_url: str) -> None:
    seed_phantom(db_url)  # as a legacy load left it (the triggers would correct the flags)
    with psycopg.connect(db_url, autocommit=True) as admin:
        create_login(admin, REPORTING, "guard_reporting")
    reporting_url = make_conninfo(db_url, user=REPORTING)
    nowhere = f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres"

    with RedisServer() as redis:
        situations: list[tuple[str, list[str], dict[str, str]]] = [
            ("done; nothing offends", ["--database-url", db_url, "alerts", "list"], {}),
            ("database unreachable", ["--database-url", nowhere, "review", "list"], {}),
            (
                "Redis unreachable, also when `guard breaker list` still prints what PostgreSQL"
                " has",
                ["--database-url", db_url, "breaker", "list"],
                {"GUARD_REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0"},
            ),
            ("unknown id", ["--database-url", db_url, "alerts", "show", "999999"], {}),
            (
                "refused by the database, e.g. a login without the role the command needs",
                ["--database-url", reporting_url, "db", "status"],
                {},
            ),
            (
                "a check that found something",
                ["--database-url", db_url, "check", "--call", "1"],
                {},
            ),
            ("unknown command or option", ["--database-url", db_url, "alerts", "nope"], {}),
            (
                "a missing or malformed value (an option, or a setting a command needs, such as"
                " `GUARD_SLACK_WEBHOOK_URL` for `guard watch --channel webhook`)",
                ["--database-url", db_url, "watch", "--once", "--channel", "webhook"],
                {},
            ),
            (
                "a missing or malformed value",
                [
                    "--database-url",
                    db_url,
                    "watch",
                    "--once",
                    "--channel",
                    "webhook",
                ],
                {"GUARD_SLACK_WEBHOOK_URL": "ftp://not-a-webhook"},
            ),
            (
                "a number outside what the database column holds",
                ["--database-url", db_url, "review", "list", "--limit", str(2**40)],
                {},
            ),
            (
                "an empty `--note`/`--reason`",
                ["--database-url", db_url, "review", "resolve", "1", "--note", " "],
                {},
            ),
        ]
        results = []
        for phrase, args, env in situations:
            expected = code_for(phrase)
            done = guard_process(
                *args,
                GUARD_REDIS_URL=env.get("GUARD_REDIS_URL", redis.url),
                **{k: v for k, v in env.items() if k != "GUARD_REDIS_URL"},
            )
            results.append((phrase[:40], expected, done.returncode))
            assert done.returncode == expected, (phrase, args, done.returncode, done.stderr)
            if expected and phrase != "a check that found something":  # a finding, no error
                _one_error_line(done)
    print(results)


def test_breaker_list_with_redis_down_prints_postgresql_and_exits_1(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO guard.breaker_state (key, state, generation, failure_count,"
            " success_count, opened_at, changed_at) VALUES"
            " ('appointment_booking:service:7', 'open', 1, 3, 0, now(), now())"
        )
    done = guard_process(
        "--database-url",
        db_url,
        "breaker",
        "list",
        GUARD_REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0",
    )
    assert done.returncode == 1
    assert "appointment_booking:service:7" in done.stdout, "what PostgreSQL has is still shown"
    line = _one_error_line(done)
    assert line.startswith("guard: error: cannot read Redis")


# A refused privilege names the command and the role it needs, and the login: what the command
# recorded of itself as it started, whatever options come before or after it, however the URL
# is given (--database-url URL, --database-url=URL, GUARD_DATABASE_URL).
@pytest.mark.parametrize(
    ("given", "argv"),
    [
        ("--database-url", ["jobs", "status", "--json"]),
        ("--database-url=", ["review", "list"]),
        ("GUARD_DATABASE_URL", ["jobs", "status"]),
    ],
)
def test_a_refusal_names_the_command_and_the_login_however_the_url_is_given(
    db_url: str, given: str, argv: list[str]
) -> None:
    from guard.cli import required_role

    stranger = _stranger(db_url)
    url = make_conninfo(db_url, user=stranger)
    if given == "GUARD_DATABASE_URL":
        done = guard_process(*argv, GUARD_DATABASE_URL=url)
    else:  # GUARD_DATABASE_URL names a login that may do it: the option must win
        root = ["--database-url", url] if given == "--database-url" else [given + url]
        done = guard_process(*root, *argv, GUARD_DATABASE_URL=db_url)
    assert done.returncode == code_for("refused by the database"), done.stderr
    line = _one_error_line(done)
    path = " ".join(argv[:2])
    assert f"`guard {path}` needs {required_role(path)}; you are logged in as {stranger}" in line
    assert line.endswith(f"you are logged in as {stranger}"), line


def test_required_role_by_the_longest_known_path() -> None:
    from guard.cli import REQUIRED_ROLES, required_role

    assert required_role("jobs status") == REQUIRED_ROLES["jobs status"]
    assert required_role("jobs run") == REQUIRED_ROLES["jobs"]  # the group's, not the reader's
    assert required_role("review claim") == REQUIRED_ROLES["review"]
    assert required_role("review list") == REQUIRED_ROLES["review list"]
    assert REQUIRED_ROLES["jobs"] != REQUIRED_ROLES["jobs status"]
    # an unknown command asks for the least: a reader
    assert required_role("") == required_role("no such") == REQUIRED_ROLES["metrics"]


# A note reading "--database-url" is no URL: the login named is the one the command used.
def test_a_refused_note_that_reads_like_the_url_option_is_one_line(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as admin:
        create_login(admin, REPORTING, "guard_reporting")
    done = guard_process(
        "review",
        "resolve",
        "1",
        "--note",
        "--database-url",
        GUARD_DATABASE_URL=make_conninfo(db_url, user=REPORTING),
    )
    assert done.returncode == code_for("refused by the database"), done.stderr
    assert _one_error_line(done).endswith(f"you are logged in as {REPORTING}")


def test_a_write_refused_as_read_only_names_the_command(db_url: str) -> None:
    """A login whose transactions are read-only by default, on a primary: the line says so and
    names the command that writes (what it recorded of itself as it started)."""
    login = "guard_exit_read_only"
    with psycopg.connect(db_url, autocommit=True) as admin:
        create_login(admin, login, "guard_owner")
        dbname = admin.info.dbname
        admin.execute(
            f"ALTER ROLE {login} IN DATABASE {dbname} SET default_transaction_read_only = on"
        )
    done = guard_process("--database-url", make_conninfo(db_url, user=login), "check")
    assert done.returncode == code_for("runtime error"), done.stderr
    assert _one_error_line(done).endswith(
        " (default_transaction_read_only is on for this login or database):"
        " `guard check` writes; run it against a writable primary"
    )


def _stranger(db_url: str) -> str:
    """A login of no Booking Guard role: it may not read schema guard."""
    stranger = "guard_exit_stranger"
    with psycopg.connect(db_url, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (stranger,)).fetchone():
            admin.execute(f"CREATE ROLE {stranger} LOGIN")
    return stranger


@pytest.mark.parametrize("argv", [["breaker", "list"], ["breaker", "show", "appointment_booking"]])
def test_breaker_reads_refuse_a_login_that_may_not_read_the_circuits(
    db_url: str, argv: list[str]
) -> None:
    stranger = _stranger(db_url)
    with RedisServer() as redis:
        done = guard_process(
            "--database-url",
            make_conninfo(db_url, user=stranger),
            *argv,
            GUARD_REDIS_URL=redis.url,
        )
    assert done.returncode == code_for("refused by the database"), done.stderr
    line = _one_error_line(done)
    needed = "Booking Guard's application, reporting, reviewer or owner role"
    assert f"`guard {' '.join(argv[:2])}` needs {needed}" in line, line
    assert line.endswith(f"you are logged in as {stranger}"), line


def test_an_unexpected_error_is_one_line_unless_debugging(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error no rule knows is a bug: one line that says so and how to see the traceback,
    exit 1; with GUARD_DEBUG set, the error itself (its traceback)."""
    from guard.cli import DEBUG_VARIABLE, _exit_for

    monkeypatch.delenv(DEBUG_VARIABLE, raising=False)
    with pytest.raises(SystemExit) as exited:
        _exit_for(RuntimeError("no rule for this"), {})
    assert exited.value.code == code_for("runtime error")
    assert capsys.readouterr().err == (
        "guard: error: unexpected RuntimeError: no rule for this"
        f" (a bug: please report it; {DEBUG_VARIABLE}=1 shows the traceback)\n"
    )
    monkeypatch.setenv(DEBUG_VARIABLE, "1")
    with pytest.raises(RuntimeError, match="no rule for this"):
        _exit_for(RuntimeError("no rule for this"), {})
    assert capsys.readouterr().err == ""


def test_a_caller_outside_standalone_mode_gets_click_s_exceptions() -> None:
    """`main.main(..., standalone_mode=False)` (a program embedding the CLI) gets the usage
    error itself, not a printed line and an exit."""
    import click

    from guard.cli import main

    with pytest.raises(click.UsageError, match="No such command"):
        main.main(["no-such-command"], standalone_mode=False)


def test_every_writing_command_and_no_other_is_guarded_against_a_standby() -> None:
    """Each path of WRITES names a real command, loaded with the standby refusal around its
    callback (a misspelt path would leave that command writing on a standby until it failed
    half-way); every other command runs without it."""
    import click

    from guard.cli import WRITES, main

    context = click.Context(main)
    guarded: dict[str, bool] = {}

    def walk(group: click.Group, path: tuple[str, ...]) -> None:
        for name in group.list_commands(context):
            command = group.get_command(context, name)
            assert command is not None, (*path, name)
            if isinstance(command, click.Group):
                walk(command, (*path, name))
                continue
            refuses = getattr(command.callback, "refuses_writes_on_standby", False)
            guarded[" ".join((*path, name))] = refuses

    walk(main, ())
    assert set(WRITES) <= set(guarded), set(WRITES) - set(guarded)
    assert {path for path, wrapped in guarded.items() if wrapped} == set(WRITES)
    assert len(guarded) > len(WRITES)  # reading commands were walked too
