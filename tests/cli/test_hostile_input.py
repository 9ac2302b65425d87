"""Hostile input to every command of the `guard` tree: the answer is a result or one
`guard: error: ...` line with exit code 1 (runtime) or 2 (usage), never a traceback.

The commands are found by walking the Click group, so a command added later is covered without
touching this file. Each parameter in turn gets each hostile value while the others keep benign
ones; the environment cases (bad URLs, an unreachable database, non-UTF-8 bytes) are then tried
on every command. The database is a real migrated clone and Redis a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from guard.cli import main
from tests.support.cli import all_commands
from tests.support.redis_server import RedisServer, free_port

# A command that would otherwise run until stopped gets the flag that makes it do one pass;
# `demo` without --stop would build a whole embedded cluster (its own test covers that).
_ONE_PASS_FLAGS = ("--once", "--stop")

HOSTILE_VALUES = [
    "",
    "   ",
    "0",
    "-1",
    str(10**20),
    str(-(10**20)),
    str(2**63),
    str(-(2**63) - 1),
    "1e400",
    "nan",
    "'; DROP TABLE calls; --",
    "$(touch /tmp/guard-pwned)",
    "%s %s %n {} {0}",
    "x" * 10_000,
    "\udcff\udcfe",  # what Python makes of non-UTF-8 bytes in argv
]


def _walk(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, (*path, name))


COMMANDS = [(path, command) for path, command in _walk(all_commands()) if path]
LEAVES = [(path, cmd) for path, cmd in COMMANDS if not isinstance(cmd, click.Group)]


def _benign(param: click.Parameter) -> str:
    kind = param.type
    if isinstance(kind, click.Choice):
        return str(kind.choices[0])
    if isinstance(kind, click.DateTime):
        return "2026-11-22"
    if isinstance(kind, click.IntRange | click.FloatRange):
        return str(kind.min if kind.min is not None else 1)
    if isinstance(kind, click.types.IntParamType | click.types.FloatParamType):
        return "1"
    if isinstance(kind, click.Path):
        return "."
    return "calendar"


def _is_flag(param: click.Parameter) -> bool:
    return isinstance(param, click.Option) and (param.is_flag or param.count)


def _argv(
    path: tuple[str, ...], command: click.Command, hostile: click.Parameter | None, value: str
) -> list[str]:
    """Required parameters and one-pass flags with benign values, `hostile` with `value`."""
    options: list[str] = []
    arguments: list[str] = []
    for param in command.params:
        if isinstance(param, click.Option):
            name = max(param.opts, key=len)
            if _is_flag(param):
                if name in _ONE_PASS_FLAGS:
                    options.append(name)
                continue
            if param is hostile:
                options += [name, value]
            elif param.required:
                options += [name, _benign(param)]
        elif isinstance(param, click.Argument):
            arguments.append(value if param is hostile else _benign(param))
    # `--` so that a value such as -1 reaches the argument's type instead of the option parser.
    return [*path, *options, *(["--", *arguments] if arguments else [])]


def _value_params(command: click.Command) -> list[click.Parameter]:
    return [
        p
        for p in command.params
        if not _is_flag(p) and p.name != "help" and isinstance(p, click.Option | click.Argument)
    ]


def assert_one_clean_answer(argv: list[str], code: int, out: str, err: str) -> None:
    where = f"guard {' '.join(a[:40] for a in argv)!r}"
    assert "Traceback" not in out + err, f"{where} printed a traceback:\n{err}"
    assert "a bug: please report it" not in err, f"{where} hit the last-resort handler: {err}"
    assert code in (0, 1, 2), f"{where} exited {code}: {err}"
    error_lines = [line for line in err.splitlines() if line.startswith("guard: error:")]
    assert len(error_lines) <= 1, f"{where} printed {len(error_lines)} error lines:\n{err}"
    if code == 2:
        assert err.count("\n") == 1 and error_lines, f"{where}: usage error not one line:\n{err}"


Invoke = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def invoke(
    db_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Invoke]:
    """Invoke `guard` in-process against a real database and Redis; files land in tmp_path."""
    monkeypatch.chdir(tmp_path)
    base_env = {
        "GUARD_DATABASE_URL": db_url,
        "GUARD_REDIS_URL": redis_url,
        "GUARD_STATE_DIR": str(tmp_path / "state"),
        "GUARD_DEBUG": None,
    }

    def invoke(argv: list[str], **env: str | None) -> tuple[int, str, str]:
        result = CliRunner().invoke(main, argv, env={**base_env, **env})
        return result.exit_code, result.stdout, result.stderr

    yield invoke


@pytest.mark.slow
@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[" ".join(path) for path, _ in LEAVES])
def test_every_parameter_takes_hostile_values(
    path: tuple[str, ...], command: click.Command, invoke: Invoke
) -> None:
    params = _value_params(command)
    for param in params:
        for value in HOSTILE_VALUES:
            argv = _argv(path, command, param, value)
            assert_one_clean_answer(argv, *invoke(argv))


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(path) for path, _ in COMMANDS]
)
def test_every_command_survives_a_hostile_environment(
    path: tuple[str, ...], command: click.Command, invoke: Invoke
) -> None:
    argv = _argv(path, command, None, "")
    closed_port = free_port()
    cases: list[dict[str, str | None]] = [
        {"GUARD_REDIS_URL": "notaurl"},
        {"GUARD_REDIS_URL": f"redis://127.0.0.1:{closed_port}/0"},
        {"GUARD_DATABASE_URL": "notaurl"},
        {"GUARD_DATABASE_URL": "postgresql://guard@127.0.0.1:1/nothing?connect_timeout=2"},
        {"GUARD_DATABASE_URL": f"postgresql://guard@127.0.0.1:{closed_port}/x"},
        {"GUARD_DATABASE_URL": "postgresql://\udcff@127.0.0.1/x"},
        {"GUARD_REDIS_URL": "redis://\udcff@127.0.0.1/0"},
        {"GUARD_DATABASE_URL": "", "PGHOST": "/nonexistent", "PGPORT": "notaport"},
    ]
    for env in cases:
        assert_one_clean_answer([*argv, f"[env {env}]"], *invoke(argv, **env))
    for extra in (["--no-such-option"], ["--help"]):
        assert_one_clean_answer(argv, *invoke([*path, *extra]))


def _guard_process(
    argv: list[bytes], env: dict[bytes, bytes]
) -> subprocess.CompletedProcess[bytes]:
    environ = {k: v for k, v in os.environb.items() if k != b"GUARD_DEBUG"}
    return subprocess.run(
        [sys.executable.encode(), b"-m", b"guard.cli", *argv],
        env={**environ, **env},
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        ([b"check", b"--call", b"\xff\xfe"], {}),
        ([b"review", b"resolve", b"1", b"--note", b"caf\xe9"], {}),
        ([b"breaker", b"trip", b"cal\xff", b"--reason", b"x"], {}),
        ([b"check"], {b"GUARD_DATABASE_URL": b"postgresql://\xff@127.0.0.1:1/x"}),
        ([b"breaker", b"list"], {b"GUARD_REDIS_URL": b"redis://\xff:1/0"}),
        ([b"breaker", b"list"], {b"GUARD_REDIS_URL": b"notaurl"}),
        ([b"review", b"claim", b"--limit", b"0"], {}),
        ([b"db", b"validate", b"--batch-size", str(10**20).encode()], {}),
        ([b"no-such-command"], {}),
    ],
)
def test_a_real_process_gets_one_line(
    argv: list[bytes], env: dict[bytes, bytes], db_url: str
) -> None:
    """What a shell really passes: bytes in argv and the environment, decoded by Python."""
    done = _guard_process(argv, {b"GUARD_DATABASE_URL": db_url.encode(), **env})
    err = done.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in done.stderr, err
    assert done.returncode in (1, 2), err
    assert err.count("\n") == 1 and err.startswith("guard: error: "), err
    assert done.stdout == b""


def test_usage_errors_are_one_line_with_exit_2(invoke: Invoke) -> None:
    code, out, err = invoke(["review", "claim", "--limit", "0"])
    assert (code, out) == (2, "")
    assert err == (
        "guard: error: Invalid value for '--limit': 0 is not in the range 1<=x<=2147483647."
        " (see `guard review claim --help`)\n"
    )
    code, _, err = invoke(["review", "resolve", "1", "--note", ""])
    assert code == 2 and "'--note': must not be empty" in err
    code, _, err = invoke(["review", "dismiss", "1", "--note", "  "])
    assert code == 2 and "'--note': must not be empty" in err
    code, _, err = invoke(["check", "--call", str(10**20)])
    assert code == 2 and "'--call': 100000000000000000000 is not in the range" in err
    code, _, err = invoke(["chek"])
    assert code == 2 and err.startswith("guard: error: No such command 'chek'.")


def test_unknown_ids_are_errors_not_empty_answers(invoke: Invoke) -> None:
    code, out, err = invoke(["check", "--call", "99999999"])
    assert (code, out, err) == (1, "", "guard: error: call 99999999 does not exist\n")
    code, out, err = invoke(["review", "resolve", "99999999", "--note", "x"])
    assert (code, out) == (1, "")
    assert err == "guard: error: review item 99999999 is not open (unknown or already closed)\n"
    code, out, err = invoke(["breaker", "show", "never-used-circuit"])
    assert (code, out) == (1, "") and err.startswith("guard: error: "), err


FLOAT_PARAMS = [
    (path, command, param)
    for path, command in LEAVES
    for param in _value_params(command)
    if isinstance(param.type, click.types.FloatParamType)
]


@pytest.mark.parametrize(
    ("path", "command", "param"),
    FLOAT_PARAMS,
    ids=[f"{' '.join(path)} {param.name}" for path, _, param in FLOAT_PARAMS],
)
def test_every_float_parameter_refuses_what_is_not_finite(
    path: tuple[str, ...], command: click.Command, param: click.Parameter, invoke: Invoke
) -> None:
    """nan passes any bound of a range: refused where it is given, not where a channel that is
    not tried on the way uses it (a float from an environment variable alike)."""
    for value in ("nan", "inf", "-inf", "1e400"):
        argv = _argv(path, command, param, value)
        code, out, err = invoke(argv)
        assert (code, out) == (2, ""), (argv, err)
        assert "is not a finite number" in err, (argv, err)
