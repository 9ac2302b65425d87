"""The `guard` command line."""

from __future__ import annotations

import errno
import functools
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import click

from guard import __version__, queries
from guard.cli.params import cap_unbounded_integers
from guard.errors import GuardError, PermissionDenied, ReadOnlyStandby, first_line, server_address

# Every command: its name, the module and attribute that define it, and the line `guard --help`
# lists it with (so the listing imports no command; the line is also the command's short help).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "alerts": ("guard.cli.alerts", "alerts", "List and show the alerts detection raised."),
    "breaker": ("guard.cli.breaker", "breaker", "Inspect and operate the circuit breakers."),
    "calendar": (
        "guard.cli.calendar",
        "calendar",
        "Compare the external calendar (Cal.com) with the appointments.",
    ),
    "check": ("guard.cli.check", "check", "Run every detection check now."),
    "db": ("guard.cli.db", "db", "Apply, roll back, inspect and verify Booking Guard's schema."),
    "demo": ("guard.cli.demo", "demo", "Start the embedded demo database with sample data."),
    "jobs": ("guard.cli.jobs", "jobs", "The scheduled jobs: their status, and running them."),
    "metrics": ("guard.cli.metrics", "metrics", "Export Booking Guard metrics for Prometheus."),
    "reconcile": (
        "guard.cli.check",
        "reconcile",
        "Correct what is safe, queue the rest for review.",
    ),
    "report": ("guard.cli.report", "report", "The daily report."),
    "review": ("guard.cli.review", "review", "List, claim, resolve and dismiss review items."),
    "rules": ("guard.cli.rules", "rules", "The rules' stage and mode, company by company."),
    "tenant": ("guard.cli.tenant", "tenant", "Bind database roles to the companies they may see."),
    "watch": (
        "guard.cli.watch",
        "watch",
        "Deliver alerts to stdout, Slack, email and Alertmanager.",
    ),
}

EXIT_RUNTIME_ERROR = 1
EXIT_USAGE_ERROR = 2
EXIT_INTERRUPTED = 130
# A developer who wants the traceback of an unexpected error sets this; users never see one.
DEBUG_VARIABLE = "GUARD_DEBUG"
# Variables read as text before any command runs: a non-UTF-8 value would otherwise surface deep
# inside libpq or redis-py as an encoding traceback.
_TEXT_VARIABLES = ("GUARD_DATABASE_URL", "GUARD_REDIS_URL")


def _fail(message: str, exit_code: int) -> NoReturn:
    # backslashreplace: a message quoting non-UTF-8 input must still print, whatever the locale.
    # visible: an error may quote data (a key, a name) that must not reach the terminal raw.
    from guard.redact import visible

    line = f"guard: error: {visible(' '.join(message.split()))}\n"
    stream = sys.stderr
    encoding = getattr(stream, "encoding", None) or "utf-8"
    stream.write(line.encode(encoding, "backslashreplace").decode(encoding, "replace"))
    stream.flush()
    sys.exit(exit_code)


def _not_utf8(text: str) -> bool:
    """Whether `text` holds a lone surrogate: how Python keeps bytes that are not UTF-8."""
    return any("\ud800" <= char <= "\udfff" for char in text)


def _refuse_undecodable(argv: list[str]) -> None:
    """Refuse non-UTF-8 arguments (lone surrogates) before they reach libpq, redis-py or a tty."""
    for position, arg in enumerate(argv, start=1):
        if _not_utf8(arg):
            # Not quoted: it may be a URL with a password in it.
            _fail(f"argument {position} is not valid UTF-8", EXIT_USAGE_ERROR)
    for name in _TEXT_VARIABLES:
        if _not_utf8(os.environ.get(name, "")):
            _fail(f"environment variable {name} is not valid UTF-8", EXIT_USAGE_ERROR)


# Which of Booking Guard's roles (README, "Roles") each command needs, by the longest matching
# command path. A login refused a privilege is told this, and which login it used.
_OWNER = "Booking Guard's owner role (guard_owner by default) or a superuser"
_READER = "Booking Guard's reporting, reviewer or owner role"
REQUIRED_ROLES: dict[str, str] = {
    "db": "Booking Guard's owner role (guard_owner by default; it applies the migrations)"
    " or a superuser",
    "check": _OWNER,
    "reconcile": _OWNER,
    "tenant": _OWNER,
    "rules": _OWNER,
    "jobs": _OWNER,
    "jobs status": _READER,
    "watch": _OWNER,
    "metrics": _READER,
    "report": _OWNER + " to generate a day not stored yet (reporting reads stored days)",
    "review": "Booking Guard's reviewer role (guard_reviewer by default)",
    "review list": _READER,
    "review show": _READER,
    "alerts": _READER,
    "alerts test": "no database login: the channel's own settings (GUARD_SLACK_WEBHOOK_URL, ...)",
    "breaker": _OWNER,
    "breaker list": "Booking Guard's application, reporting, reviewer or owner role",
    "breaker show": "Booking Guard's application, reporting, reviewer or owner role",
    "calendar": "Booking Guard's application role (guard_app by default) or owner role",
    "demo": "a local PostgreSQL superuser",
}


def required_role(path: str) -> str:
    words = path.split()
    while words:
        need = REQUIRED_ROLES.get(" ".join(words))
        if need is not None:
            return need
        words.pop()
    return _READER


def _refusal(error: BaseException, ran: dict[str, Any]) -> str:
    """One line for a refused privilege: what the database said, what the command needs, and
    the login that was used."""
    from guard.connection import current_login

    path = ran.get("command", "")
    detail = str(error) if isinstance(error, PermissionDenied) else first_line(error)
    return (
        f"{detail}: `guard {path}` needs {required_role(path)}; you are logged in as"
        f" {current_login(ran.get('database_url'))}"
    )


# The commands that write to PostgreSQL (or, for `guard breaker`, to the circuits every process
# shares), by command path, with when they do (from their parsed options). Run against a hot
# standby they are refused before they change anything: `guard watch` and `guard jobs run` without
# --once wait for a primary instead (they retry), `guard reconcile --dry-run` and `guard db apply
# --dry-run` only read (the plan is one READ ONLY transaction).
WRITES: dict[str, Callable[[dict[str, Any]], bool]] = {
    **{
        path: lambda options: True
        for path in (
            "breaker configure",
            "breaker disable",
            "breaker force-close",
            "breaker reset",
            "breaker trip",
            "calendar reconcile",
            "check",
            "db rollback",
            "db validate",
            "review claim",
            "review dismiss",
            "review resolve",
            "rules mode",
            "rules stage",
            "tenant grant",
            "tenant revoke",
        )
    },
    "db apply": lambda options: not options.get("dry_run"),
    "reconcile": lambda options: not options.get("dry_run"),
    "jobs run": lambda options: bool(options.get("once")),
    "watch": lambda options: bool(options.get("once")),
}


def _probe(database_url: str | None, read: Callable[[Any], str | None]) -> str | None:
    """What `read` answers on a connection to the server; None when the server is unreachable."""
    import psycopg

    from guard.connection import connect

    try:
        with connect(database_url, autocommit=True, application_name="guard") as conn:
            return read(conn)
    except (GuardError, psycopg.Error):
        return None


def _without_schema(conn: Any) -> str | None:
    """host:port/dbname of a database without Booking Guard's schema, else None."""
    row = conn.execute(queries.HAS_GUARD_SCHEMA).fetchone()
    return None if row and row[0] else server_address(conn.info)


# Commands that do not need Booking Guard's schema in the database: `guard demo` starts its own
# cluster, and `guard db` creates the schema and reports on it (`db validate` needs it).
SCHEMA_NOT_NEEDED = frozenset({"demo", "db apply", "db rollback", "db status", "db verify"})
# Commands that use no database at all: the demo starts its own, a channel test sends through
# the channel's settings alone.
DATABASE_NOT_USED = frozenset({"demo", "alerts test"})


def _check_database_first(command: click.Command, path: tuple[str, ...]) -> None:
    """Wrap every command under `command`: to record its path beside --database-url in the
    root context's obj (what an error line names), and, when it uses PostgreSQL, to stop with
    one line before it does anything: with no database named (resolve_conninfo) instead of
    using libpq's default; when it needs Booking Guard's schema and the database has none; when
    it writes (WRITES) and the server is a standby (ReadOnlyStandby: a breaker command would
    otherwise change Redis, then fail to record it in PostgreSQL)."""
    if isinstance(command, click.Group):
        for word, sub in command.commands.items():
            _check_database_first(sub, (*path, word))
        return
    name = " ".join(path)
    if command.callback is None:
        return
    original = command.callback
    needs_schema = name not in SCHEMA_NOT_NEEDED
    writes = WRITES.get(name)

    @functools.wraps(original)
    def checked(*args: Any, **options: Any) -> Any:
        from guard.connection import resolve_conninfo, standby_address

        ran = click.get_current_context().find_root().ensure_object(dict)
        ran["command"] = name
        if name in DATABASE_NOT_USED:
            return original(*args, **options)
        database_url = ran.get("database_url")
        resolve_conninfo(database_url)  # none given, or malformed: one line, exit 2
        where = _probe(database_url, _without_schema) if needs_schema else None
        if where is not None:
            raise GuardError(f"database {where} has no Booking Guard schema: run `guard db apply`")
        where = _probe(database_url, standby_address) if writes and writes(options) else None
        if where is not None:
            raise ReadOnlyStandby(where, name)
        return original(*args, **options)

    checked.refuses_writes_on_standby = name in WRITES  # type: ignore[attr-defined]
    command.callback = checked


def _behind(error: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first error of `kinds` behind an error, also one re-raised as a GuardError."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _missing_object(error: BaseException) -> str | None:
    """The line for an error caused by a missing object, None for any other error: what
    PostgreSQL says when an object of Booking Guard's is not there, a schema applied in part or
    older than this `guard` (a database without any is stopped before the command runs)."""
    import psycopg

    missing = (
        psycopg.errors.UndefinedTable,
        psycopg.errors.UndefinedFunction,
        psycopg.errors.InvalidSchemaName,
    )
    found = _behind(error, missing)
    if found is None or "guard db apply" in str(error):
        return None
    return (
        f"{first_line(found)}: this database's Booking Guard schema is incomplete or older than"
        " this guard: run `guard db apply`"
    )


def _schema_behind(conn: Any) -> str | None:
    """The first column of Booking Guard's schema as this guard knows it (its canonical
    snapshot) that the database lacks, None when it has them all."""
    from guard.schema.definitions import stored_snapshot

    have = {
        f"guard.{relation}.{column}" for relation, column in conn.execute(queries.GUARD_COLUMNS)
    }
    relations = stored_snapshot()[0]["relations"]
    wanted = (  # the application's tables are its own, whatever their columns
        f"{name}.{column}"
        for name in sorted(relations)
        if name.startswith("guard.")
        for column in relations[name]["columns"]
    )
    return next((column for column in wanted if column not in have), None)


def _older_schema(error: BaseException, ran: dict[str, Any]) -> str | None:
    """The line for an unexpected error in a database whose Booking Guard schema is older than
    this guard (a view or function of the old shape: a column this guard reads is not there),
    None when the schema is this guard's, or the database is not reached."""
    if ran.get("command", "") in DATABASE_NOT_USED or not ran.get("command"):
        return None
    lacking = _probe(ran.get("database_url"), _schema_behind)
    if lacking is None:
        return None
    return (
        f"this database's Booking Guard schema is older than this guard (it has no {lacking};"
        f" {type(error).__name__}: {first_line(error)}): run `guard db apply`"
    )


def _read_only_refusal(error: BaseException, ran: dict[str, Any]) -> str:
    """A write refused as read-only: the standby line when the server is one (a primary demoted
    while the command ran), else what made the transaction read-only."""
    from guard.connection import standby_address

    path = ran.get("command", "")
    where = _probe(ran.get("database_url"), standby_address)
    if where is not None:
        return str(ReadOnlyStandby(where, path))
    return (
        f"{first_line(error)} (default_transaction_read_only is on for this login or database):"
        f" `guard {path}` writes; run it against a writable primary"
    )


def _exit_for(error: BaseException, ran: dict[str, Any]) -> NoReturn:
    """The one line and exit code for an error that ended a command; `ran` is what the command
    recorded of itself (the root context's obj): its path and --database-url."""
    import psycopg

    if isinstance(error, PermissionDenied | psycopg.errors.InsufficientPrivilege):
        _fail(_refusal(error, ran), EXIT_RUNTIME_ERROR)
    read_only = _behind(error, (psycopg.errors.ReadOnlySqlTransaction,))
    if read_only is not None and not isinstance(error, ReadOnlyStandby):
        _fail(_read_only_refusal(read_only, ran), EXIT_RUNTIME_ERROR)
    if isinstance(error, click.exceptions.NoArgsIsHelpError):
        # A bare group: the list of its commands helps, and the error line says what is missing.
        if error.ctx is not None:
            click.echo(error.ctx.get_help())
        _fail("missing command (see the list above)", EXIT_USAGE_ERROR)
    if isinstance(error, click.UsageError):
        see = f" (see `{error.ctx.command_path} --help`)" if error.ctx is not None else ""
        _fail(error.format_message() + see, EXIT_USAGE_ERROR)
    missing = _missing_object(error)
    if missing is not None:
        _fail(missing, EXIT_RUNTIME_ERROR)
    if isinstance(error, GuardError):
        _fail(str(error), error.exit_code)
    if isinstance(error, click.ClickException):
        _fail(error.format_message(), EXIT_RUNTIME_ERROR)
    if isinstance(error, click.Abort | EOFError):
        _fail("aborted", EXIT_RUNTIME_ERROR)
    if isinstance(error, KeyboardInterrupt):
        _fail("interrupted", EXIT_INTERRUPTED)
    if isinstance(error, OSError) and error.errno == errno.EPIPE:
        # `guard ... | head`: the reader left; nothing to say.
        sys.exit(EXIT_RUNTIME_ERROR)
    if os.environ.get(DEBUG_VARIABLE):
        raise error
    _fail(
        _older_schema(error, ran)
        or f"unexpected {type(error).__name__}: {first_line(error)}"
        f" (a bug: please report it; {DEBUG_VARIABLE}=1 shows the traceback)",
        EXIT_RUNTIME_ERROR,
    )


class _Group(click.Group):
    """The root group: loads a command when it is asked for (COMMANDS), and turns every error,
    Click's usage errors included, into one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute, short_help = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            command.short_help = short_help
            cap_unbounded_integers(command)
            _check_database_first(command, (cmd_name,))
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in self.list_commands(ctx)])

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:  # a caller that wants the exceptions themselves
            return super().main(args, prog_name, complete_var, False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        _refuse_undecodable(argv)
        connection = sys.modules.get("guard.connection")
        if connection is not None:  # a new command starts without a known login (tests run many)
            connection.forget_login()
        ran: dict[str, Any] = {}  # the root context's obj: what the command records of itself
        try:
            # "guard" always: Click would guess the program name from how it was started.
            result = super().main(argv, "guard", complete_var, False, obj=ran, **extra)
        except (Exception, KeyboardInterrupt) as error:
            _exit_for(error, ran)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="guard")
@click.option(
    "--database-url",
    envvar="GUARD_DATABASE_URL",
    default=None,
    help="postgresql://user@host:port/dbname (default: GUARD_DATABASE_URL, else PG* variables).",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """Booking Guard: keeps an appointment-booking PostgreSQL database consistent."""
    ctx.ensure_object(dict)
    ctx.obj["database_url"] = database_url


cap_unbounded_integers(main)
