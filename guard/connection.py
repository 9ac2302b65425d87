"""Opening connections the same way everywhere: --database-url, then GUARD_DATABASE_URL, then
libpq's own PG* variables."""

from __future__ import annotations

import getpass
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from guard import queries
from guard.backoff import exponential_delay
from guard.errors import (
    ConfigurationError,
    DatabaseUnavailable,
    GuardError,
    PermissionDenied,
    first_line,
    server_address,
)
from guard.redact import conninfo_password, redact_text, remember

SUPPORTED_MAJOR_VERSIONS = (15, 16, 17, 18)
YOYO_SCHEME = "postgresql+psycopg://"
# What libpq reads as a URI; anything else as key=value.
_URI_SCHEMES = ("postgresql://", "postgres://")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.:-]{0,30}://")
# Waits between attempts to reach PostgreSQL again: from the minimum, doubling, capped. A
# connection that worked ends an outage: the next one starts from the minimum again.
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0


def reconnect_delay(failures: int) -> float:
    """Seconds to wait after the n-th failed attempt in a row (n >= 1)."""
    return exponential_delay(max(1, failures), RECONNECT_MIN_S, RECONNECT_MAX_S)


# libpq's variables that choose the server, database or login: one of them set is a choice made.
CONNECTION_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")


def os_user() -> str:
    """The operating system user (what libpq logs in as by default), ``uid<n>`` when it has no
    name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def who_acts() -> str:
    """Who a manual action (a breaker command or call, an alert skip or test) is recorded as:
    ``user@host``."""
    return f"{os_user()}@{socket.gethostname()}"


def resolve_conninfo(database_url: str | None) -> str:
    """The connection string to use; an empty string lets libpq read PG* variables."""
    url = database_url or os.environ.get("GUARD_DATABASE_URL") or ""
    if not url and not any(os.environ.get(name) for name in CONNECTION_VARIABLES):
        # a usage error, naming what libpq would have connected to
        defaults = {
            option.keyword.decode(): (option.val or option.compiled or b"").decode()
            for option in psycopg.pq.Conninfo.get_defaults()
        }
        user = defaults.get("user") or os_user()
        host = defaults.get("host") or "local socket"
        port, dbname = defaults.get("port") or "5432", defaults.get("dbname") or user
        raise ConfigurationError(
            "no database given: pass --database-url or set GUARD_DATABASE_URL (or libpq's PGHOST,"
            " PGPORT, PGDATABASE, PGUSER or PGSERVICE); Booking Guard does not fall back to"
            f" libpq's default database, {host}:{port}/{dbname} as {user}"
        )
    if url.startswith(YOYO_SCHEME):  # accept yoyo-style URLs too
        url = "postgresql://" + url[len(YOYO_SCHEME) :]
    password = _password(url)
    remember(password)
    try:
        if url and not url.strip():
            raise psycopg.ProgrammingError("it is blank")
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as error:
        # libpq reads anything but postgresql:// as key=value: its reason for `mysql://...` or
        # `jdbc:postgresql://...` (missing "=") would not say what is wrong.
        scheme = _SCHEME.match(url)
        if url.startswith(_URI_SCHEMES) or scheme is None:
            reason = _without(first_line(error), password)
        else:
            reason = f"scheme {scheme.group()} is not PostgreSQL's"
        raise ConfigurationError(
            f"invalid database URL: {reason}; expected postgresql://USER@HOST:PORT/DB or a"
            " libpq key=value string (host=HOST port=PORT dbname=DB user=USER)"
        ) from None
    return url


_QUOTED = re.compile(r'"([^"]*)"')


def _password(url: str) -> str | None:
    """The password in a URL or key=value string, also when it is malformed (a space in it)."""
    if "://" in url:
        try:
            return urlsplit(url).password
        except ValueError:
            return None
    return conninfo_password(url)


def _without(message: str, password: str | None) -> str:
    """libpq's message with the password, and every quoted fragment of it, masked."""
    if not password:
        return redact_text(message)

    def quoted(match: re.Match[str]) -> str:
        fragment = match.group(1)
        return (
            '"***"'
            if fragment and (fragment in password or password in fragment)
            else match.group()
        )

    return redact_text(_QUOTED.sub(quoted, message), [password])


def describe(conninfo: str) -> str:
    """host:port/dbname as user, without the password, for messages."""
    params: dict[str, Any] = conninfo_to_dict(conninfo) if conninfo else {}
    host = params.get("host") or os.environ.get("PGHOST") or "local socket"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    hosts, ports = str(host).split(","), str(port).split(",")
    if len(ports) == 1:
        ports *= len(hosts)
    where = ",".join(f"{h}:{p or '5432'}" for h, p in zip(hosts, ports, strict=False))
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or "(default database)"
    user = params.get("user") or os.environ.get("PGUSER")
    who = f" as {user}" if user else ""
    return f"{where}/{dbname}{who}"


# The login of the newest connection this process opened: named in a refusal of privileges.
_last_login: dict[str, str] = {}


def forget_login() -> None:
    """A new command starts without a known login (the CLI runs several in one process in tests)."""
    _last_login.clear()


def current_login(database_url: str | None = None) -> str:
    """The login the CLI connects as: the one of its newest connection, else what libpq would
    use (the URL's user, PGUSER, else the operating system user)."""
    if "login" in _last_login:
        return _last_login["login"]
    try:
        params: dict[str, Any] = conninfo_to_dict(resolve_conninfo(database_url))
    except GuardError:
        params = {}
    user = params.get("user") or os.environ.get("PGUSER")
    return str(user) if user else os_user()


def open_connection(conninfo: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """psycopg.connect without automatic prepared statements: the one way Booking Guard opens a
    connection (tests/db/test_pooler_safety.py finds any other). Raises what psycopg raises."""
    return psycopg.connect(conninfo, prepare_threshold=None, **kwargs)


def behind_pooler(conn: psycopg.Connection[Any]) -> bool:
    """True when a connection pooler sits between this connection and PostgreSQL."""
    row = conn.execute(queries.BACKEND_PID).fetchone()
    return row is None or int(row[0]) != conn.info.backend_pid


def scalar(conn: psycopg.Connection[Any], query: Any, params: Any = None) -> Any:
    """The first value of a statement's first row; None when it returns no row. No `params`: the
    statement is sent as it is (a `%` in it is no placeholder)."""
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def standby_address(conn: psycopg.Connection[Any]) -> str | None:
    """host:port/dbname of the server when it is a hot standby (pg_is_in_recovery()), else None."""
    return server_address(conn.info) if scalar(conn, queries.IN_RECOVERY) else None


def pooler_refusal(what: str) -> GuardError:
    """The one line that refuses `what` on a pooled connection."""
    return GuardError(
        f"{what} needs a direct connection to PostgreSQL, and this one goes through a"
        " connection pooler (PgBouncer or similar): connect to the server's own host and port"
        " (docs/dba.md#connection-poolers)"
    )


def require_direct(conn: psycopg.Connection[Any], what: str) -> None:
    """Refuse `what` on a pooled connection: it needs one server session from start to end (a
    lock held across transactions, statements outside a transaction with session settings), which
    a transaction pooler does not give and a session pooler would keep for its next client."""
    if behind_pooler(conn):
        raise pooler_refusal(what)


def connect(
    database_url: str | None,
    *,
    autocommit: bool = False,
    application_name: str = "booking-guard",
) -> psycopg.Connection[Any]:
    """Connect and check the server version; any failure is a one-line GuardError."""
    conninfo = resolve_conninfo(database_url)
    try:
        conn = open_connection(
            conninfo,
            autocommit=autocommit,
            connect_timeout=10,
            application_name=application_name,
        )
    except psycopg.Error as error:
        reason = _without(first_line(error), _password(conninfo))
        raise DatabaseUnavailable(f"cannot connect to {describe(conninfo)}: {reason}") from None
    _last_login["login"] = conn.info.user
    # Refuse a server Booking Guard is not tested on, naming what an older one lacks.
    major = conn.info.server_version // 10000
    if major in SUPPORTED_MAJOR_VERSIONS:
        return conn
    conn.close()
    where, supported = describe(conninfo), ", ".join(str(v) for v in SUPPORTED_MAJOR_VERSIONS)
    if major < min(SUPPORTED_MAJOR_VERSIONS):
        # every view of Booking Guard's is security_invoker: the reader's row-level security
        # applies through it
        raise GuardError(
            f"PostgreSQL {major} at {where} is not supported: Booking Guard needs"
            f" {min(SUPPORTED_MAJOR_VERSIONS)} or newer (views with security_invoker, which"
            f" PostgreSQL 15 introduced); supported: {supported}"
        )
    raise GuardError(
        f"PostgreSQL {major} at {where} is not supported yet: Booking Guard is tested on"
        f" {supported}"
    )


@contextmanager
def transaction(
    database_url: str | None, application_name: str = "booking-guard"
) -> Iterator[psycopg.Connection[Any]]:
    """A connection whose work is committed when the block ends without an error (a refused
    change leaves everything as it was), its functions' errors as one line."""
    with connect(database_url, application_name=application_name) as conn:
        with guard_function_errors():
            yield conn
        conn.commit()


def fetch_all(database_url: str | None, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run one statement in its own transaction and return its rows."""
    with transaction(database_url) as conn:
        return conn.execute(query, params).fetchall()


@contextmanager
def guard_function_errors() -> Iterator[None]:
    """Errors of a call to a Booking Guard function as one GuardError line."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege as error:
        raise PermissionDenied(first_line(error)) from None
    except (psycopg.errors.UndefinedFunction, psycopg.errors.InvalidSchemaName):
        raise GuardError(
            "this database has no Booking Guard schema yet (or an old one): run `guard db apply`"
        ) from None
    except psycopg.Error as error:
        raise GuardError(first_line(error)) from None


@contextmanager
def statement_timeout(conn: psycopg.Connection[Any], seconds: float) -> Iterator[None]:
    """``statement_timeout`` for the current transaction (``SET LOCAL``): for PostgreSQL work
    inside a guarded call, since a sync call that times out only stops waiting, so the server
    must cancel the statement itself. Use it inside a transaction; the setting ends with it."""
    milliseconds = max(1, round(seconds * 1000))
    conn.execute(queries.SET_STATEMENT_TIMEOUT, (f"{milliseconds}ms",), prepare=False)
    yield
