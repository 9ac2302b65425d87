"""A Laravel application (tests/laravel/app: Eloquent over PDO, Debian's php-laravel-framework)
adopting Booking Guard: its tables made by Laravel's Schema builder and logged in Laravel's
migrations table, then `guard db apply` and `guard db validate` as docs/dba.md says for an
existing database. The application connects as a login that is a member of the application role
and nothing else (no hand-written grant). `make setup` installs php-cli, php-pgsql and
php-laravel-framework; a machine without them fails these tests, it never skips them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from guard.schema.migrate import Migrator
from guard.schema.validate import validate
from tests.support.postgres import Cluster

APP = Path(__file__).resolve().parent / "app" / "run.php"
APP_LOGIN = "laravel_app"


def start_php(
    script: Path, command: str, args: dict[str, Any], env: dict[str, str]
) -> subprocess.Popen[str]:
    """`php SCRIPT COMMAND ARGS-AS-JSON`, its output (stderr too) read as text."""
    php = shutil.which("php")
    assert php is not None, "php is not installed: run `make setup` (php-cli, php-pgsql)"
    return subprocess.Popen(
        [php, str(script), command, json.dumps(args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@dataclass(frozen=True)
class LaravelApp:
    """The PHP application, run as one login against one database."""

    url: str
    login: str
    timezone: str = "UTC"  # config/app.php's timezone

    def run(self, command: str, **args: Any) -> dict[str, Any]:
        """Run one of the application's services; its JSON answer (an error is a dict too)."""
        return json.loads(self.process(command, **args).communicate(timeout=120)[0])  # type: ignore[no-any-return]

    def process(self, command: str, **args: Any) -> subprocess.Popen[str]:
        parts = urlsplit(self.url)
        env = dict(
            os.environ,
            DB_HOST=parts.hostname or "127.0.0.1",
            DB_PORT=str(parts.port or 5432),
            DB_DATABASE=parts.path.lstrip("/"),
            DB_USERNAME=self.login,
            APP_TIMEZONE=self.timezone,
        )
        return start_php(APP, command, args, env)

    def as_login(self, login: str) -> LaravelApp:
        return LaravelApp(self.url, login, self.timezone)

    def in_zone(self, timezone: str) -> LaravelApp:
        return LaravelApp(self.url, self.login, timezone)


def application_login(url: str, login: str = APP_LOGIN, *, bound: bool = False) -> None:
    """A login whose only right is membership of the application role, or (`bound`) of the
    role for application logins that serve some companies only."""
    with psycopg.connect(url, autocommit=True) as admin:
        group = admin.execute(
            "SELECT guard.bound_application_role()"
            if bound
            else "SELECT role_name FROM guard.role_names WHERE kind = 'application'"
        ).fetchone()
        assert group is not None
        if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone() is None:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(login)))
        admin.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(group[0]), sql.Identifier(login))
        )


@pytest.fixture(params=["laravel first", "booking guard first"])
def laravel(
    request: pytest.FixtureRequest, pg_cluster: Cluster, empty_db_url: str
) -> Iterator[LaravelApp]:
    """Both adoption orders: Laravel's migration first (as the superuser that owns the tables),
    then Booking Guard (apply, validate); or Booking Guard on an empty database first, then
    Laravel's migration, which keeps the tables it finds. Then the application login."""
    superuser = LaravelApp(empty_db_url, pg_cluster.user)
    if request.param == "booking guard first":
        with Migrator(empty_db_url) as migrator:
            migrator.apply()
    migrated = superuser.run("migrate")
    assert migrated == {"migrated": ["2024_01_01_000000_create_booking_tables"]}, migrated
    with Migrator(empty_db_url) as migrator:
        migrator.apply()  # nothing left to apply when Booking Guard came first
    report = validate(empty_db_url, pause_ratio=0)
    assert report.complete, report.constraints
    application_login(empty_db_url)
    yield superuser.as_login(APP_LOGIN)
