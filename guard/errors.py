"""The one exception the CLI turns into a single clear line and a non-zero exit."""

from __future__ import annotations

from typing import Any


class GuardError(Exception):
    """An error a user can act on. Its message is one line and never contains a secret."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's text (psycopg errors span several)."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


class DatabaseUnavailable(GuardError):
    """PostgreSQL could not be reached, or the connection was lost: worth a reconnect (after a
    failover the next attempt may reach the new primary), unlike other errors."""


class ConfigurationError(GuardError):
    """A missing or malformed setting: a usage error, exit 2, as in README's table of exit codes."""

    exit_code = 2


class PermissionDenied(GuardError):
    """The database refused the login the privilege a command needs (InsufficientPrivilege)."""


class ReadOnlyStandby(GuardError):
    """A command that writes was pointed at a hot standby (`pg_is_in_recovery()`): refused
    before it changes anything, naming the server and the command."""

    def __init__(self, where: str, command: str) -> None:
        super().__init__(
            f"{where} is a read-only standby (in recovery): `guard {command}` writes;"
            " run it against the primary"
        )


def server_address(info: Any) -> str:
    """host:port/dbname of a connection's server (psycopg's `conn.info`): the one actually
    reached, also with a multi-host URL."""
    return f"{info.host}:{info.port}/{info.dbname}"
