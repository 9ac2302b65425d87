"""The one exception the CLI turns into a single clear line and a non-zero exit."""


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


class ConfigError(GuardError):
    """Configuration no run could work with (a malformed URL, an SMTP setting), found at start:
    a usage error, exit 2, before anything is sent."""

    exit_code = 2
