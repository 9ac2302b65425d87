"""Every command sequence of the documentation runs, in order, as a reader would run it.

The ```sh blocks of README.md and docs/ are the sequences (tests/docs/sequences.py says how a
block is read and what is rewritten). Each says, on the line before it, the world it runs in:

- "an empty database": a cluster of its own with an empty database `bookings` owned by the
  DBA's login `owner` (CREATEROLE, as docs/security.md asks of the migrating user), the
  libpq variables of a superuser (`psql` and `createdb` lines are a DBA's), and
  GUARD_DATABASE_URL the owner's URL, as docs/dba.md's first block exports it;
- "a database with Booking Guard": the same after `guard db apply` as `owner`, with companies
  1-20, 42 and 43, the logins the docs connect as (`app`, `guard_watch`, `"Reporting Bot"`,
  group `support_team_acme`), open alerts numbered from 801 (docs/alerts.md shows 801), every
  channel configured against a real receiver on 127.0.0.1 (HTTP for the webhook and
  Alertmanager, SMTP for email), a real Redis for the breaker, `guard metrics` on a free port
  (GUARD_METRICS_PORT), and in the working directory
  the application's calendar client `myapp.calendar_client` (docs/calendar.md's `--client`).

Every line must exit 0 and print no traceback; a long-running command must run until Ctrl-C and
then exit 130."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller

from guard.breaker import Backend, BreakerConfig, CircuitBreaker
from guard.demo.embedded import free_port
from tests.docs.sequences import (
    COMMAND,
    ROOT,
    Block,
    annotation_parts,
    blocks,
    expand,
    plan,
    runs_until_stopped,
    shell_blocks,
)
from tests.support.polling import collect_lines
from tests.support.postgres import Cluster, throwaway_cluster
from tests.support.redis_server import RedisServer

SERVER_BIN = "/usr/lib/postgresql/15/bin"
TEMPLATE = "bookings_template"
RUNNING_FOR_S = 3
# What each long-running command prints once it serves, with its Ctrl-C handling in place. Ctrl-C
# goes out RUNNING_FOR_S after that line, however long the start took: a Ctrl-C sent while Python
# still imports the command ends in a traceback or "aborted", which is not what the docs promise
# of the running command (a loaded machine took more than 3 s to import `guard watch`).
READY = {
    "watch": "watching channels",
    "jobs run": "running due jobs; Ctrl-C stops",
    "metrics": "serving http://",
}
READY_WITHIN_S = 120
CALENDAR_CLIENT = '''"""The application's calendar client: its calendar holds no booking."""


def list_bookings(since, until):
    return []
'''


def _ids(items: list[Block]) -> list[str]:
    return [block.name for block in items]


def test_every_command_block_is_a_sh_block_that_says_how_it_runs() -> None:
    """A block of commands without ```sh would escape the runs below; a ```sh block without its
    line would too."""
    untagged = [
        block.name
        for block in blocks()
        if block.language in ("", "text") and any(COMMAND.match(line) for line in block.body)
    ]
    assert untagged == [], "commands in a block that is not ```sh"
    for block in shell_blocks():
        plan(block)  # raises for a missing or unknown annotation
        parts = annotation_parts(block)
        if parts["test"]:
            test = ROOT / str(parts["test"])
            assert test.is_file(), block.name
            assert block.page.name in test.read_text(), f"{test} does not read {block.page.name}"


def test_the_reasons_a_block_is_not_run_are_few() -> None:
    """Not running a block is the exception: name them here, so adding one is a decision."""
    skipped = {
        (str(block.page.relative_to(ROOT)), block.commands()[0].split()[0])
        for block in shell_blocks()
        if annotation_parts(block)["reason"]
    }
    assert skipped == {
        ("README.md", "make"),  # make demo, make test
        ("README.md", "eval"),  # shell completion, one line per shell
        ("docs/contributing.md", "make"),
        ("docs/jobs.md", "make"),  # make bench-scale
        ("docs/tracing.md", "pip"),
    }


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Mailbox:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def _use_circuit(key: str, redis_url: str) -> None:
    """The application's breaker guards one call: the circuit `key` exists (docs/breaker.md's
    commands act on circuits the application uses)."""
    backend = Backend(redis_url)
    try:
        CircuitBreaker(key, BreakerConfig(), backend=backend).call(lambda: None)
    finally:
        backend.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A cluster of its own: the docs name logins (`owner`, `app`) other tests may create too."""
    with throwaway_cluster() as own:
        with own.admin() as conn:
            conn.execute("CREATE ROLE owner LOGIN CREATEROLE")
        yield own


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Redis, an HTTP receiver and an SMTP server, and the settings that point at them."""
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    smtp_port = free_port()
    smtp = Controller(_Mailbox(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    http_url = f"http://127.0.0.1:{http.server_address[1]}"
    try:
        with RedisServer() as redis:
            _use_circuit("calendar", redis.url)
            yield {
                "GUARD_REDIS_URL": redis.url,
                "GUARD_SLACK_WEBHOOK_URL": f"{http_url}/webhook",
                "GUARD_ALERTMANAGER_URL": http_url,
                "GUARD_SMTP_HOST": "127.0.0.1",
                "GUARD_SMTP_PORT": str(smtp_port),
                "GUARD_SMTP_FROM": "guard@example.com",
                "GUARD_SMTP_TO": "oncall@example.com",
            }
    finally:
        smtp.stop()
        http.shutdown()
        http.server_close()


@pytest.fixture(scope="module")
def template(
    cluster: Cluster, services: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> str:
    """`bookings_template`: Booking Guard applied by the owner's login, then the world above."""
    with cluster.admin() as conn:
        conn.execute(f"CREATE DATABASE {TEMPLATE} OWNER owner")
    env = _environment(cluster, services, tmp_path_factory.mktemp("apply"), TEMPLATE)
    done = subprocess.run(
        ["guard", "db", "apply"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    with psycopg.connect(cluster.url(TEMPLATE), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO public.companies (id, name) SELECT g, 'company ' || g"
            " FROM (SELECT generate_series(1, 20) UNION ALL VALUES (42), (43)) AS ids (g)"
        )
        conn.execute("CREATE ROLE app LOGIN IN ROLE guard_app")
        conn.execute("CREATE ROLE guard_watch LOGIN IN ROLE guard_owner")
        conn.execute('CREATE ROLE "Reporting Bot" LOGIN IN ROLE guard_reporting')
        conn.execute("CREATE ROLE support_team_acme NOLOGIN IN ROLE guard_reviewer")
        conn.execute("SELECT setval(pg_get_serial_sequence('guard.alerts', 'id'), 800)")
        conn.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message, details)"
            " SELECT 'docs:' || g, 'booked_without_appointment', 42, 'call', g, 'high',"
            " 'booked but no appointment', '{}'::jsonb FROM generate_series(1, 3) AS g"
        )
    return TEMPLATE


def _environment(
    cluster: Cluster, services: dict[str, str], home: Path, dbname: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "GUARD_"))}
    env.update(services)
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), SERVER_BIN, env["PATH"]]),
        HOME=str(home),
        PGHOST=cluster.host,
        PGPORT=str(cluster.port),
        PGUSER=cluster.user,
        PGDATABASE=dbname,
        GUARD_DATABASE_URL=f"postgresql://owner@{cluster.host}:{cluster.port}/{dbname}",
        GUARD_METRICS_PORT=str(free_port()),  # 10187 may be taken on a test machine
        PYTHONFAULTHANDLER="1",  # a command that does not stop shows where it is
    )
    return env


def _run_line(command: str, env: dict[str, str], cwd: Path) -> tuple[int, str, dict[str, str]]:
    """Run one line in bash; return its exit status, its output, and the environment after it."""
    env_file = cwd / ".env-after"
    script = f"{command}\n__status=$?\nenv -0 > {env_file}\nexit $__status\n"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    after = dict(item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
    return done.returncode, done.stdout + done.stderr, after


def _run_until_interrupted(command: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Start a long-running command, wait until it says it serves, check it is still running
    a while after that, then Ctrl-C it."""
    words = re.sub(r"^([A-Z_]+=\S+ )+", "", command)
    ready = next((line for name, line in READY.items() if words.startswith(f"guard {name}")), None)
    assert ready is not None, f"{command}: a long-running command READY does not know"
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines, reader = collect_lines(process.stdout)
    deadline = time.monotonic() + READY_WITHIN_S
    while not any(ready in line for line in lines) and process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            process.wait(timeout=10)
            pytest.fail(
                f"{command} did not print {ready!r} within {READY_WITHIN_S} s:\n{''.join(lines)}"
            )
        time.sleep(0.05)
    if process.poll() is None:
        time.sleep(RUNNING_FOR_S)
    early = process.poll()
    if early is None:
        os.kill(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGABRT)  # faulthandler prints every thread's stack
        process.wait(timeout=10)
        reader.join(timeout=10)
        pytest.fail(f"{command} still ran 60 s after Ctrl-C:\n{''.join(lines)}")
    reader.join(timeout=10)
    return (-1 if early is not None else process.returncode), "".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize(
    "block",
    [b for b in shell_blocks() if plan(b) is not None],
    ids=_ids([b for b in shell_blocks() if plan(b) is not None]),
)
def test_the_documented_sequence_runs(
    block: Block,
    cluster: Cluster,
    services: dict[str, str],
    template: str,
    tmp_path: Path,
) -> None:
    how = plan(block)
    assert how is not None
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "calendar_client.py").write_text(CALENDAR_CLIENT)
    env = _environment(cluster, services, tmp_path, "bookings")
    source = "template0" if how.world == "an empty database" else template
    with cluster.admin() as conn:
        conn.execute(f"CREATE DATABASE bookings TEMPLATE {source} OWNER owner")
    try:
        if how.after_sql:
            assert block.sql_before, f"{block.name}: no SQL block right before it"
            with psycopg.connect(cluster.url("bookings"), autocommit=True) as conn:
                conn.execute(block.sql_before.encode())
        host = f"{cluster.host}:{cluster.port}"
        for line in block.commands():
            for command in expand(line, how.values, host):
                if runs_until_stopped(command):
                    status, output = _run_until_interrupted(command, env, tmp_path)
                    assert status == 130, f"{block.name}: {command}\n{output[-3000:]}"
                else:
                    status, output, env = _run_line(command, env, tmp_path)
                    assert status == 0, f"{block.name}: {command}\n{output[-3000:]}"
                assert "Traceback" not in output, f"{block.name}: {command}\n{output[-3000:]}"
    finally:
        with cluster.admin() as conn:
            conn.execute("DROP DATABASE IF EXISTS bookings WITH (FORCE)")
