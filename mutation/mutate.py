"""`make mutate`: does the test suite fail when the code is wrong?

SQL: every mutant of mutation/sql_mutants.toml is one realistic wrong change (a dropped
condition, a threshold off by one, a lock clause removed, ...). It is applied to the object's
canonical file under sql/ (a function, view, trigger or policy is applied from there by `guard db
apply`, which builds the test template database) and, for a versioned object (a type, a
constraint), to the migration that last creates it too; the tests the catalogue names run, the
change is reverted. A mutant
is killed when one of those tests fails, survived when they all pass. A survivor is either a gap
in the suite (write the test) or equivalent (the catalogue says why in `equivalent`).

A kill is a test failing for behaviour, never for text: after a SQL mutant is applied, the
copy's generated files are made again from it (`python -m devtools.generate`: the catalog
snapshot `guard db verify` and the definitions check compare with, the invariant map, the BI
column reference, the lock table when a migration changed) and a mutated released migration's
checksum in migrations/releases.toml is the mutated file's, as a developer would commit the
change. A test that compares text (a snapshot, `verify`, a checksum, a generated document) then
passes whatever the mutant did; no list of such tests is kept. And a kill counts only for a
test that passes on the unmutated tree: the covering tests run there first (the baseline), and
one that fails there is left out of every mutant's run and named.

Generated mutants (`--generated N`, mutation/generated.py) are made from the canonical
definitions by operators (boundaries, AND/OR, a dropped coalesce, NOT, condition line, grant
row or status literal) and sampled; their covering tests are found by a rule.

Python: mutation/python_mutants.toml is the same kind of catalogue for guard/breaker (the Lua
scripts and the memory store alike), guard/ops/dispatch, guard/schema/migrate.py and
guard/booking.py; a Python mutant changes its file only. `--python` also runs cosmic-ray (an
established mutation tool) over the same modules, each with its own test subset (PY_AREAS):
thousands of mechanical mutations, too many to run in full but a check on what the catalogue did not
think of.

Everything runs in a temporary copy of the tree (tracked and untracked files, .venv excluded);
the live tree is never written, so Ctrl-C or a crash leaves nothing to revert.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from guard.schema.definitions import is_definition
from guard.schema.releases import checksum
from mutation import PYTEST, coverage, generated

ROOT = Path(__file__).resolve().parent.parent
# Hand-written mutants: of the canonical SQL (and the migration defining the object), and of the
# Python modules (the file only). Ids are unique across both.
CATALOGUES = (ROOT / "mutation" / "sql_mutants.toml", ROOT / "mutation" / "python_mutants.toml")

# The files `make generated` writes from sql/ and migrations/ (devtools), made again in the
# mutated copy; and the release record whose checksums a mutated released migration changes.
GENERATED_FILES = (
    "guard/schema/canonical_snapshot.json",
    "docs/invariant-map.md",
    "docs/bi-columns.md",
    "docs/bi.md",
    "docs/dba.md",
)
RELEASES = "migrations/releases.toml"

PGTAP_NODE = "tests/pgtap/test_pgtap.py::test_pgtap_file[{name}]"
MUTANT_TIMEOUT_SECONDS = 600

# Python areas: the module cosmic-ray mutates and the tests that cover it.
PY_AREAS: dict[str, tuple[str, tuple[str, ...]]] = {
    # every module of the package is tested somewhere in tests/breaker (persistence, control and
    # the CLI, hostile state, outages): a narrower subset left their mutants alive
    "py-breaker": ("guard/breaker", ("tests/breaker",)),
    "py-dispatch": ("guard/ops/dispatch", ("tests/dispatch",)),
    "py-migrate": (
        "guard/schema/migrate.py",
        (
            "tests/db/test_migrate_faults.py",
            "tests/db/test_online_migrations.py",
            "tests/db/test_definitions.py",
            "tests/db/test_dry_run.py",
            "tests/db/test_releases.py",
            "tests/db/test_rollback_keeps_writes.py",
            "tests/db/test_new_migration.py",
            "tests/db/test_contention.py",
            "tests/cli/test_db_cli.py",
            # the refusal before anything is applied (the file's other tests replay history)
            "tests/db/test_managed.py::test_without_createrole_apply_names_the_privilege_and_changes_nothing",
        ),
    ),
    "py-definitions": (
        "guard/schema/definitions.py",
        (
            "tests/db/test_definitions.py",
            "tests/db/test_dry_run.py",
            "tests/db/test_registry_rows.py",
        ),
    ),
    "py-booking": (
        "guard/booking.py",
        (
            "tests/booking/test_booking_path.py",
            "tests/booking/test_booking_journal.py",
            "tests/booking/test_booking_breaker.py",
            "tests/metrics/test_booking_metrics.py",
            "tests/tracing/test_tracing.py",
        ),
    ),
    "py-retry": (
        "guard/retry.py",
        (
            "tests/unit/test_retry_policy.py",
            "tests/breaker/test_breaker_retry.py",
            "tests/unit/test_backoff.py",
        ),
    ),
    "py-lock-retry": (
        "guard/schema/lock_retry.py",
        (
            "tests/db/test_lock_budget.py",
            "tests/db/test_hold_guard.py",
            "tests/db/test_online_migrations.py",
            # the CLI's defaults are the policy's (the deadline of a Python caller)
            "tests/lint/test_docs_match_code.py::test_the_documented_lock_waits_are_the_migrators_defaults",
        ),
    ),
    "py-masking": (
        "guard/masking.py",
        ("tests/dispatch/test_masking.py", "tests/security/test_masking_rule.py"),
    ),
    "py-cli-exit": (
        "guard/cli/__init__.py",
        ("tests/cli/test_exit_codes.py", "tests/cli/test_no_database.py"),
    ),
}


@dataclass(frozen=True)
class Mutant:
    id: str
    area: str
    file: str
    find: str
    replace: str
    breaks: str
    tests: tuple[str, ...]
    equivalent: str | None = None
    migration: str | None = None


@dataclass
class Outcome:
    mutant_id: str
    area: str
    status: str  # killed, survived, error (the mutated tree did not build or run)
    killer: str
    seconds: float
    explained: bool
    operator: str = ""  # generated mutants: the operator that made it


def load_catalogue(paths: Sequence[Path] = CATALOGUES) -> list[Mutant]:
    raws = [raw for path in paths for raw in tomllib.loads(path.read_text()).get("mutant", [])]
    mutants: list[Mutant] = []
    seen: set[str] = set()
    allowed = set(Mutant.__dataclass_fields__)
    for raw in raws:
        unknown = set(raw) - allowed
        if unknown:
            raise ValueError(f"mutant {raw.get('id')}: unknown keys {sorted(unknown)}")
        mutant = Mutant(**{**raw, "tests": tuple(raw["tests"])})
        if mutant.id in seen:
            raise ValueError(f"mutant {mutant.id}: id used twice")
        seen.add(mutant.id)
        if mutant.find == mutant.replace:
            raise ValueError(f"mutant {mutant.id}: replacement equals the original")
        if not mutant.tests:
            raise ValueError(f"mutant {mutant.id}: no covering tests")
        mutants.append(mutant)
    return mutants


def test_node_ids(mutant: Mutant) -> list[str]:
    """pgtests/AREA/NAME.sql means its pytest runner; anything else is a pytest node id or path."""
    return [
        PGTAP_NODE.format(name=t.removeprefix("pgtests/")) if t.startswith("pgtests/") else t
        for t in mutant.tests
    ]


def _definition_pattern(sql_file: str) -> re.Pattern[str]:
    """How a migration creates the object of a canonical file (named schema.object.sql, or
    schema.table.name.sql for a constraint, policy or trigger on a table)."""
    kind = Path(sql_file).parent.name
    parts = Path(sql_file).name.removesuffix(".sql").split(".")
    create = r"CREATE\s+(?:OR\s+REPLACE\s+)?"
    if kind == "functions":
        return re.compile(create + rf"FUNCTION\s+{re.escape('.'.join(parts))}\s*\(", re.I)
    if kind == "constraints" and len(parts) == 2:
        return re.compile(create + rf"VIEW\s+{re.escape('.'.join(parts))}\b", re.I)
    if kind == "constraints":
        return re.compile(rf"ADD\s+CONSTRAINT\s+{re.escape(parts[2])}\b", re.I)
    if kind == "policies":
        table = re.escape(".".join(parts[:2]))
        return re.compile(
            rf"(?:CREATE|ALTER)\s+POLICY\s+{re.escape(parts[2])}\s+ON\s+{table}\b", re.I
        )
    if kind == "triggers":
        return re.compile(
            create + rf"(?:CONSTRAINT\s+)?TRIGGER\s+{re.escape(parts[-1])}\b[^;]*?"
            rf"ON\s+{re.escape('.'.join(parts[:2]))}\b",
            re.I | re.S,
        )
    return re.compile(create + rf"\w+\s+{re.escape('.'.join(parts))}\b", re.I)


_NEXT_STATEMENT = re.compile(r"^(?:CREATE|ALTER|DO|COMMENT|GRANT|REVOKE|DROP|INSERT)\b", re.M)


def defining_migration(tree: Path, mutant: Mutant) -> tuple[Path, int]:
    """The last forward migration that creates the object, and where its definition starts."""
    forward = sorted(
        p for p in (tree / "migrations").glob("*.sql") if not p.name.endswith(".rollback.sql")
    )
    if mutant.migration:
        path = tree / mutant.migration
        text = path.read_text()
        match = _definition_pattern(mutant.file).search(text)
        return path, match.start() if match else 0
    pattern = _definition_pattern(mutant.file)
    for path in reversed(forward):
        matches = list(pattern.finditer(path.read_text()))
        if matches:
            return path, matches[-1].start()
    raise LookupError(f"mutant {mutant.id}: no migration creates the object of {mutant.file}")


def apply_mutant(tree: Path, mutant: Mutant) -> list[tuple[Path, bytes]]:
    """Change the file in the copy, and for a versioned SQL object (a table, type, constraint) the
    migration that defines it too; returns their original bytes for the revert."""
    canonical = tree / mutant.file
    text = canonical.read_text()
    count = text.count(mutant.find)
    if count != 1:
        raise LookupError(f"mutant {mutant.id}: text found {count} times in {mutant.file}")
    if canonical.suffix != ".sql" or is_definition(Path(mutant.file).relative_to("sql").as_posix()):
        # a Python module, or a definition `guard db apply` applies from sql/ itself
        original = canonical.read_bytes()
        canonical.write_text(text.replace(mutant.find, mutant.replace))
        return [(canonical, original)]
    migration, start = defining_migration(tree, mutant)
    migration_text = migration.read_text()
    # Only inside the definition: up to the next top-level statement of the migration.
    following = _NEXT_STATEMENT.search(migration_text, start + 1)
    end = following.start() if following else len(migration_text)
    at = migration_text.find(mutant.find, start, end)
    if at < 0:
        raise LookupError(
            f"mutant {mutant.id}: text not in the definition in {migration.name} "
            "(set `migration` in the catalogue)"
        )
    originals = [(canonical, canonical.read_bytes()), (migration, migration.read_bytes())]
    canonical.write_text(text.replace(mutant.find, mutant.replace))
    migration.write_text(
        migration_text[:at] + mutant.replace + migration_text[at + len(mutant.find) :]
    )
    return originals


@contextmanager
def tree_copy() -> Iterator[Path]:
    """The working tree (committed, changed and untracked files, not ignored ones) in a
    temporary directory, removed afterwards whatever happens."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    with tempfile.TemporaryDirectory(prefix="guard-mutate-") as tmp:
        dest = Path(tmp) / "tree"
        for name in filter(None, listed):
            source = ROOT / os.fsdecode(name)
            if source.is_file():
                target = dest / os.fsdecode(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        yield dest


def _pytest_env(tree: Path) -> dict[str, str]:
    # The copy's `guard` package (and so its migrations/) before the live tree's editable install.
    return {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}


def regenerate(tree: Path, changed: Sequence[Path]) -> list[tuple[Path, bytes]]:
    """Make the copy's generated files from its mutated sources, as `make generated` would, and
    record a mutated released migration's checksum; returns the original bytes to put back."""
    originals = [
        (tree / name, (tree / name).read_bytes())
        for name in (*GENERATED_FILES, RELEASES)
        if (tree / name).exists()
    ]
    migrations = [p for p in changed if p.parent.name == "migrations"]
    if migrations:
        releases = tree / RELEASES
        text = releases.read_text()
        for migration in migrations:
            migration_id = migration.name.removesuffix(".sql").removesuffix(".rollback")
            recorded = re.search(rf'"{re.escape(migration_id)}" = "([0-9a-f]{{64}})"', text)
            if recorded:
                forward = migration.with_name(f"{migration_id}.sql")
                text = text.replace(recorded.group(1), checksum(forward))
        releases.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "devtools.generate"],
        cwd=tree,
        env=_pytest_env(tree),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        for path, content in originals:
            path.write_bytes(content)
        raise GenerateError((done.stderr or done.stdout).strip()[-400:])
    return originals


class GenerateError(Exception):
    """The mutated tree's generated files could not be made (the mutant breaks the build)."""


def run_tests(
    tree: Path,
    node_ids: Sequence[str],
    report: Path,
    marks: str | None = None,
    deselect: Sequence[str] = (),
    first_failure: bool = True,
) -> tuple[str, str]:
    """(status, killer): killed by the first failing test, error when only errors occurred."""
    command = [
        *PYTEST,
        *(["-x"] if first_failure else []),
        f"--junitxml={report}",
        *(["-m", marks] if marks else []),
        *(f"--deselect={node}" for node in deselect),
        *node_ids,
    ]
    process = subprocess.Popen(
        command,
        cwd=tree,
        env=_pytest_env(tree),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=MUTANT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        _stop(process)
        return "killed", f"timeout after {MUTANT_TIMEOUT_SECONDS} s"
    except BaseException:
        _stop(process)
        raise
    if process.returncode == 0:
        return "survived", ""
    failed, errored = _junit_problems(report)
    if failed:
        return "killed", failed[0]
    detail = errored[0] if errored else output.decode(errors="replace").strip()[-400:]
    return "error", detail


def _node_id(tree: Path, junit_name: str) -> str:
    """`tests.db.test_x.TestY::test_z[1]` (JUnit's classname::name) as a pytest node id."""
    classname, _, name = junit_name.partition("::")
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        module = "/".join(parts[:cut]) + ".py"
        if (tree / module).exists():
            return "::".join([module, *parts[cut:], name])
    return junit_name


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT first: pytest then runs its fixtures' teardown, which stops the throwaway
    PostgreSQL cluster and Redis server (a SIGKILL would leave them running)."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _junit_problems(report: Path) -> tuple[list[str], list[str]]:
    if not report.exists():
        return [], []
    failed: list[str] = []
    errored: list[str] = []
    # The report is the one our own pytest run just wrote, not outside input.
    for case in ET.parse(report).iter("testcase"):  # noqa: S314
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("failure") is not None:
            failed.append(name)
        elif case.find("error") is not None:
            message = case.find("error")
            errored.append(f"{name}: {(message.get('message') or '')[:300]}")  # type: ignore[union-attr]
    return failed, errored


def run_mutants(
    mutants: Sequence[Mutant],
    baseline: bool,
    marks: str | None = None,
    operators: dict[str, str] | None = None,
) -> list[Outcome]:
    """Run each mutant's covering tests on a copy of the tree carrying it. `marks`: a pytest
    marker expression for every run (generated mutants leave the slow tests out)."""
    outcomes: list[Outcome] = []
    with tree_copy() as tree:
        try:  # the unmutated copy as `make generated` leaves it, the base of every comparison
            regenerate(tree, [])
        except GenerateError as error:
            raise SystemExit(f"mutate: the unmutated tree does not build: {error}") from None
        unreliable: list[str] = []
        if baseline:
            nodes = sorted({n for m in mutants for n in test_node_ids(m)})
            report = tree.parent / "baseline.xml"
            run_tests(tree, nodes, report, marks, first_failure=False)
            failed, errored = _junit_problems(report)
            unreliable = [_node_id(tree, name.split(": ", 1)[0]) for name in failed + errored]
            # A test that fails without the mutant proves nothing when it fails with it: it is
            # left out of every run and named.
            for node in unreliable:
                print(f"baseline: fails unmutated, not counted: {node}", flush=True)
            print(
                f"baseline: {len(nodes)} covering test files run on the unmutated tree", flush=True
            )
        for number, mutant in enumerate(mutants, 1):
            started = time.monotonic()
            if not mutant.tests:  # a generated mutant of an object no test names or runs
                outcomes.append(
                    Outcome(
                        mutant.id,
                        mutant.area,
                        "survived",
                        "no test names or runs it",
                        0.0,
                        mutant.equivalent is not None,
                        (operators or {}).get(mutant.id, ""),
                    )
                )
                print(
                    f"[{number}/{len(mutants)}] {mutant.id:<40} survived: no test names or runs it"
                )
                continue
            originals = apply_mutant(tree, mutant)
            try:
                report = tree.parent / f"{mutant.id}.xml"
                try:
                    if mutant.file.endswith(".sql"):
                        originals += regenerate(tree, [path for path, _ in originals])
                    status, killer = run_tests(
                        tree, test_node_ids(mutant), report, marks, unreliable
                    )
                except GenerateError as error:
                    # stillborn: the mutated SQL does not build, so no test is needed to
                    # notice it; reported, and left out of the kill rate like any error
                    status, killer = "error", f"make generated: {error}"
            finally:
                for path, content in originals:
                    path.write_bytes(content)
            outcome = Outcome(
                mutant.id,
                mutant.area,
                status,
                killer,
                time.monotonic() - started,
                status == "survived" and mutant.equivalent is not None,
                (operators or {}).get(mutant.id, ""),
            )
            outcomes.append(outcome)
            note = " (equivalent, explained)" if outcome.explained else ""
            print(
                f"[{number}/{len(mutants)}] {mutant.id:<40} {status:<8} {outcome.seconds:5.1f} s"
                f"  {killer}{note}",
                flush=True,
            )
    return outcomes


def run_python_area(area: str, sample: int | None, offset: int = 0) -> list[Outcome]:
    """cosmic-ray over one area in a copy of the tree; `sample` keeps every n-th mutation only
    (the rest are marked skipped in cosmic-ray's session) for a quicker partial run, starting
    at the `offset`-th (another offset: another draw of the same size)."""
    module, tests = PY_AREAS[area]
    outcomes: list[Outcome] = []
    with tree_copy() as tree:
        config = tree.parent / "cosmic-ray.toml"
        session = tree.parent / "session.sqlite"
        test_command = " ".join([*PYTEST, "-x", *tests])
        config.write_text(
            "[cosmic-ray]\n"
            f'module-path = "{module}"\n'
            f"timeout = {float(MUTANT_TIMEOUT_SECONDS)}\n"
            "excluded-modules = []\n"
            f'test-command = "{test_command}"\n'
            "[cosmic-ray.distributor]\n"
            'name = "local"\n'
        )
        env = _pytest_env(tree)
        cosmic_ray = str(Path(sys.executable).parent / "cosmic-ray")
        subprocess.run(
            [cosmic_ray, "init", str(config), str(session)], cwd=tree, env=env, check=True
        )
        if sample:
            _keep_every_nth(session, sample, offset)
        started = time.monotonic()
        subprocess.run(
            [cosmic_ray, "exec", str(config), str(session)], cwd=tree, env=env, check=True
        )
        elapsed = time.monotonic() - started
        with sqlite3.connect(session) as db:
            rows = db.execute(
                "SELECT s.module_path, s.operator_name, s.start_pos_row, s.start_pos_col, "
                "CASE r.worker_outcome WHEN 'TIMEOUT' THEN 'TIMEOUT' ELSE r.test_outcome END "
                "FROM work_items AS w JOIN mutation_specs AS s ON s.job_id = w.job_id "
                "JOIN work_results AS r ON r.job_id = w.job_id "
                "WHERE r.worker_outcome IN ('NORMAL', 'TIMEOUT')"
            ).fetchall()
        annotations = {
            path: _annotation_spans(tree / path) for path in {str(row[0]) for row in rows}
        }
        for path, operator, row, column, test_outcome in rows:
            # INCOMPETENT: the tests could not run at all (a mutant that breaks the import).
            # TIMEOUT: the tests never finished (MUTANT_TIMEOUT_SECONDS), a mutant that loops
            # forever; it did not pass them, so it counts as killed, as the catalogue's do.
            status = {"SURVIVED": "survived", "KILLED": "killed", "TIMEOUT": "killed"}.get(
                test_outcome, "error"
            )
            killer = {"survived": "", "killed": "the area's tests"}.get(status, "")
            if test_outcome == "TIMEOUT":
                killer = f"timeout after {MUTANT_TIMEOUT_SECONDS} s"
            # A type annotation is never evaluated (`from __future__ import annotations`): a
            # mutant there is equivalent, found by where it is, not listed.
            in_annotation = _inside(annotations[str(path)], int(row), int(column))
            outcomes.append(
                Outcome(
                    f"{Path(path).name}:{row}:{column}:{operator.rsplit('/', 1)[-1]}",
                    area,
                    status,
                    killer,
                    elapsed / max(len(rows), 1),
                    status == "survived" and in_annotation,
                )
            )
    return outcomes


Span = tuple[int, int, int, int]  # first line, first column, last line, end column


def _annotation_spans(module: Path) -> list[Span]:
    """Where a module's type annotations are (arguments, returns, annotated assignments)."""
    spans: list[Span] = []
    for node in ast.walk(ast.parse(module.read_text())):
        found: list[ast.expr | None] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            every = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            every += [a for a in (node.args.vararg, node.args.kwarg) if a is not None]
            found = [a.annotation for a in every] + [node.returns]
        elif isinstance(node, ast.AnnAssign):
            found = [node.annotation]
        for annotation in found:
            if annotation is not None and annotation.end_lineno is not None:
                spans.append(
                    (
                        annotation.lineno,
                        annotation.col_offset,
                        annotation.end_lineno,
                        annotation.end_col_offset or 0,
                    )
                )
    return spans


def _inside(spans: list[Span], row: int, column: int) -> bool:
    return any((first, start) <= (row, column) < (last, end) for first, start, last, end in spans)


def _keep_every_nth(session: Path, n: int, offset: int = 0) -> None:
    with sqlite3.connect(session) as db:
        jobs = [row[0] for row in db.execute("SELECT job_id FROM work_items ORDER BY job_id")]
        skipped = [(job,) for index, job in enumerate(jobs) if index % n != offset % n]
        db.executemany(
            "INSERT INTO work_results (job_id, worker_outcome, output, test_outcome, diff) "
            "VALUES (?, 'SKIPPED', 'not in the sample', NULL, '')",
            skipped,
        )


RESULTS = ROOT / "results" / "mutation"
RATE_COLUMNS = (
    "mutants",
    "killed",
    "survived",
    "explained",
    "errors",
    "kill rate",
    "rate without explained",
)


def print_table(outcomes: Sequence[Outcome], seconds: float) -> None:
    """Print the rates by area (and by operator), then write them with every outcome to
    results/mutation/last-run.json and .md, so a run is evidence a change can cite."""
    tables = {"area": _rates(outcomes, lambda o: o.area)}
    if any(o.operator for o in outcomes):
        tables["operator"] = _rates([o for o in outcomes if o.operator], lambda o: o.operator)
    for title, rows in tables.items():
        print()
        header = f"{title:<14} " + " ".join(f"{c:>{max(7, len(c))}}" for c in RATE_COLUMNS)
        print(header)
        print("-" * len(header))
        for group, *values in rows:
            print(f"{group:<14} " + " ".join(
                f"{v:>{max(7, len(c))}}" for c, v in zip(RATE_COLUMNS, values, strict=True)
            ))  # fmt: skip
    _print_problems(outcomes, seconds)
    _write_results(outcomes, seconds, tables)


def _rates(outcomes: Sequence[Outcome], key: Callable[[Outcome], str]) -> list[list[str]]:
    """Killed / judged (killed + survived), errors apart; explained survivors count as survivors."""
    table = []
    for group in [*sorted({key(o) for o in outcomes}), "total"]:
        rows = [o for o in outcomes if group == "total" or key(o) == group]
        killed = sum(o.status == "killed" for o in rows)
        survived = sum(o.status == "survived" for o in rows)
        explained = sum(o.explained for o in rows)
        errors = sum(o.status == "error" for o in rows)
        judged = killed + survived
        honest = judged - explained
        table.append([
            group, str(len(rows)), str(killed), str(survived), str(explained), str(errors),
            f"{100 * killed / judged:.1f} %" if judged else "-",
            f"{100 * killed / honest:.1f} %" if honest else "-",
        ])  # fmt: skip
    return table


def _write_results(
    outcomes: Sequence[Outcome], seconds: float, tables: dict[str, list[list[str]]]
) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    ran = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    record = {
        "ran": ran,
        "command": "make mutate MUTATE_ARGS='" + " ".join(sys.argv[1:]) + "'",
        "minutes": round(seconds / 60, 1),
        "outcomes": [dataclasses.asdict(o) for o in outcomes],
    }
    (RESULTS / "last-run.json").write_text(json.dumps(record, indent=1) + "\n")
    lines = [
        "# The last `make mutate` run",
        "",
        f"<!-- written by mutation/mutate.py: {ran}, `{record['command']}`,"
        f" {record['minutes']} min; every outcome in last-run.json -->",
    ]
    for title, rows in tables.items():
        lines += ["", f"| {title} | " + " | ".join(RATE_COLUMNS) + " |"]
        lines.append("|---" * (len(RATE_COLUMNS) + 1) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    (RESULTS / "last-run.md").write_text("\n".join(lines) + "\n")


def _print_problems(outcomes: Sequence[Outcome], seconds: float) -> None:
    unexplained = [o for o in outcomes if o.status == "survived" and not o.explained]
    broken = [o for o in outcomes if o.status == "error"]
    print(f"\n{len(outcomes)} mutants in {seconds / 60:.1f} min")
    for outcome in unexplained:
        print(f"UNEXPLAINED SURVIVOR: {outcome.mutant_id}")
    for outcome in broken:
        print(
            f"ERROR (mutant did not build or tests could not run): {outcome.mutant_id}: "
            f"{outcome.killer}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make mutate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="mutant id (repeatable)")
    parser.add_argument(
        "--area",
        action="append",
        default=[],
        help="area (repeatable); with --generated a folder of sql/: functions, checks, views, ...",
    )
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")
    parser.add_argument(
        "--python", action="store_true", help="also run cosmic-ray over the Python areas"
    )
    parser.add_argument(
        "--python-sample",
        type=int,
        default=None,
        metavar="N",
        help="Python: run every N-th mutation only",
    )
    parser.add_argument(
        "--python-offset",
        type=int,
        default=0,
        metavar="K",
        help="Python, with --python-sample N: start at the K-th mutation (0 to N-1; a new draw)",
    )
    parser.add_argument(
        "--python-only",
        action="store_true",
        help="Python areas: cosmic-ray's mutants only, not the catalogue's of the same areas",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the run of the covering tests on the unmutated tree (a kill then proves less)",
    )
    parser.add_argument(
        "--generated",
        type=int,
        default=None,
        metavar="N",
        help="generated SQL mutants instead of the catalogue: a random sample of N (0: all)",
    )
    parser.add_argument("--seed", type=int, default=51, help="the sample's seed (default 51)")
    parser.add_argument(
        "--operator", action="append", default=[], help="generated: this operator (repeatable)"
    )
    parser.add_argument(
        "--object",
        action="append",
        default=[],
        help="generated: mutants of this object only, e.g. run_checks (repeatable)",
    )
    args = parser.parse_args(argv)

    if args.generated is not None:
        return _run_generated(args)
    mutants = load_catalogue()
    if args.only:
        unknown = set(args.only) - {m.id for m in mutants}
        if unknown:
            parser.error(f"unknown mutant ids: {sorted(unknown)}")
        mutants = [m for m in mutants if m.id in args.only]
    if args.area:
        mutants = [m for m in mutants if m.area in args.area]
    if args.python_only:
        mutants = []
    py_areas = [a for a in args.area if a in PY_AREAS] if args.python else []
    if args.python and not py_areas and not args.only:
        py_areas = list(PY_AREAS)
    if args.list:
        for m in mutants:
            print(f"{m.id:<40} {m.area:<11} {m.file}\n    breaks: {m.breaks}")
        return 0

    # SIGTERM (and SIGINT, which a shell ignores in background jobs) end the run cleanly: the
    # running tests are stopped, the temporary tree removed.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    try:
        if mutants:
            outcomes += run_mutants(mutants, not args.no_baseline)
        for area in py_areas:
            outcomes += run_python_area(area, args.python_sample, args.python_offset)
    except KeyboardInterrupt:
        print("\ninterrupted: the temporary tree is removed, the live tree was never changed")
        print_table(outcomes, time.monotonic() - started)
        return 130
    print_table(outcomes, time.monotonic() - started)
    failed = any(
        o.status == "error" or (o.status == "survived" and not o.explained) for o in outcomes
    )
    return 1 if failed else 0


def generated_mutants(
    size: int | None,
    seed: int,
    operators: Sequence[str] = (),
    only: Sequence[str] = (),
    executed: coverage.Coverage | None = None,
    areas: Sequence[str] = (),
    objects: Sequence[str] = (),
) -> tuple[list[Mutant], dict[str, str], int]:
    """The sampled generated mutants as catalogue entries (covering tests found by the rule,
    equivalents from mutation/equivalent_generated.toml), their operators, and the full count.
    `only`: these ids instead of a sample (a sample's survivors run again after a fix);
    `executed`: which tests run which function (mutation/coverage.py); `areas` (sql/ folders)
    and `objects` (names without schema) narrow the population a sample is drawn from."""
    everything = [
        g
        for g in generated.generate()
        if (not operators or g.operator in operators)
        and (not areas or g.area in areas)
        and (not objects or generated.object_name(g) in objects)
    ]
    if only:
        unknown = set(only) - {g.id for g in everything}
        if unknown:
            raise ValueError(f"unknown generated mutant ids: {sorted(unknown)}")
        chosen = [g for g in everything if g.id in only]
    else:
        chosen = generated.sample(everything, size, seed)
    catalogued: dict[str, set[str]] = {}
    for mutant in load_catalogue():
        catalogued.setdefault(mutant.file, set()).update(t.split("::", 1)[0] for t in mutant.tests)
    reasons = generated.equivalents()
    mutants = [
        Mutant(
            id=g.id,
            area=g.area,
            file=g.file,
            find=g.find,
            replace=g.replace,
            breaks=f"{g.operator} at line {g.line}",
            tests=tuple(generated.covering_tests(g, catalogued, executed)),
            equivalent=reasons.get(g.id),
        )
        for g in chosen
    ]
    return mutants, {g.id: g.operator for g in chosen}, len(everything)


def _run_generated(args: argparse.Namespace) -> int:
    size = args.generated or None
    chosen = (size, args.seed, args.operator, args.only)
    narrowed = {"areas": args.area, "objects": args.object}
    unknown_areas = set(args.area) - set(generated.AREAS)
    if unknown_areas:
        print(
            f"make mutate: unknown generated areas {sorted(unknown_areas)}"
            f" (known: {', '.join(generated.AREAS)})",
            file=sys.stderr,
        )
        return 2
    try:
        # --list shows what a run would do with the map made before; it never runs the suite
        mutants, operators, total = generated_mutants(*chosen, coverage.cached(), **narrowed)
    except ValueError as error:
        print(f"make mutate: {error}", file=sys.stderr)
        return 2
    if not mutants:
        print("make mutate: no generated mutant is in that area or object", file=sys.stderr)
        return 2
    if not args.list:
        mutants, operators, total = generated_mutants(
            *chosen, coverage.function_coverage(), **narrowed
        )
    chosen_how = f" (a simple random sample, seed {args.seed})" if size else ""
    print(
        f"generated: {len(mutants)} of {total} mutants"
        + (" (by id)" if args.only else chosen_how)
        + "; tests marked slow are left out",
        flush=True,
    )
    if args.list:
        for m in mutants:
            print(f"{m.id:<52} {operators[m.id]:<15} {m.file}  {len(m.tests)} test files")
        return 0
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    try:
        outcomes = run_mutants(mutants, not args.no_baseline, "not slow", operators)
    except KeyboardInterrupt:
        print("\ninterrupted: the temporary tree is removed, the live tree was never changed")
        return 130
    finally:
        print_table(outcomes, time.monotonic() - started)
    return 1 if any(o.status == "survived" and not o.explained for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
