"""`python -m devtools.generate` (`make generated`): write the files derived from sql/ and
migrations/, or with --check name the stale ones and exit 1.

One throwaway cluster serves the run, started only if a generator needs a database; the
database with the migrations and sql/ applied is built once and shared. A generator whose
inputs carry a fingerprint (the lock table) is skipped while its fingerprint matches."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from devtools import bi_columns, invariant_map, lock_table, snapshot
from devtools.database import Databases, throwaway_databases
from guard.errors import GuardError

CHECKOUT = Path(__file__).resolve().parents[1]

# relative path -> its text now, for each file a generator writes
Texts = dict[str, str]


@dataclass(frozen=True)
class Generator:
    name: str
    paths: tuple[str, ...]
    build: Callable[[Databases, Texts], Texts]
    # True when the stored files were made from the inputs there are now (a fingerprint)
    up_to_date: Callable[[Texts], bool] | None = None


GENERATORS = {
    g.name: g
    for g in (
        Generator("snapshot", (snapshot.PATH,), snapshot.build),
        Generator("lock_table", (lock_table.PATH,), lock_table.build, lock_table.up_to_date),
        Generator("invariant_map", (invariant_map.PATH,), invariant_map.build),
        Generator("bi_columns", (bi_columns.REFERENCE, bi_columns.BI_MD), bi_columns.build),
    )
}


def run(
    names: Sequence[str],
    *,
    check: bool,
    root: Path = CHECKOUT,
    databases: Callable[[], AbstractContextManager[Databases]] = throwaway_databases,
    say: Callable[[str], None] = print,
) -> list[str]:
    """Generate (or with `check`, compare) the files of the named generators under `root`;
    returns the stale files (with `check`) or the files rewritten."""
    current = {
        path: (root / path).read_text() if (root / path).exists() else ""
        for name in names
        for path in GENERATORS[name].paths
    }
    changed: list[str] = []
    to_build = []
    for name in names:
        generator = GENERATORS[name]
        if generator.up_to_date is None:
            to_build.append(generator)
        elif generator.up_to_date(current):
            say(f"{name}: skipped, its inputs are those it was generated from (fingerprint)")
        elif check:
            # the fingerprint is part of what would be written, so the file is stale as it is
            say(f"{name}: stale (its fingerprint does not match its inputs)")
            changed += generator.paths
        else:
            to_build.append(generator)
    if not to_build:
        return changed
    with databases() as shared:
        for generator in to_build:
            started = time.monotonic()
            wanted = generator.build(shared, current)
            differ = [path for path, text in wanted.items() if text != current[path]]
            if not check:
                for path in differ:
                    (root / path).write_text(wanted[path])
            verb = "stale" if check else "wrote"
            outcome = f"{verb} {', '.join(differ)}" if differ else "current"
            say(f"{generator.name}: {outcome} ({time.monotonic() - started:.1f} s)")
            changed += differ
    return changed


def main(
    argv: Sequence[str] | None = None,
    databases: Callable[[], AbstractContextManager[Databases]] = throwaway_databases,
) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.generate", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=list(GENERATORS),
        metavar="NAME",
        help=f"this generator only (repeatable): {', '.join(GENERATORS)}",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 naming the stale files"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=CHECKOUT,
        help="the checkout whose generated files are written or checked (default: this one)",
    )
    args = parser.parse_args(argv)
    names = list(dict.fromkeys(args.only or GENERATORS))  # each once, in the order given
    try:
        changed = run(names, check=args.check, root=args.root, databases=databases)
    except GuardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.check and changed:
        print("stale: " + ", ".join(changed) + "; run `make generated`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
