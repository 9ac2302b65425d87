"""Run one benchmark and keep what it printed in results/bench/, so the run a change cites is
committed beside the tools instead of copied into the docs by hand.

    python -m bench.record NAME [ARGS...]      # e.g. python -m bench.record instructions

Runs `bench.NAME`'s main with ARGS, printing as usual, and writes its output to
results/bench/NAME.json when the run printed JSON (`--json`), else NAME.txt (NAME followed by
the arguments that change what is measured, e.g. `workload--saturated`), with when and how it
ran. Exits as the benchmark does.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import re
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results" / "bench"


class _Tee(io.StringIO):
    """Keeps what is written and passes it on to the terminal as it comes."""

    def __init__(self, terminal: io.TextIOBase | None = None) -> None:
        super().__init__()
        self.terminal = terminal or sys.stdout

    def write(self, text: str) -> int:
        self.terminal.write(text)
        return super().write(text)

    def flush(self) -> None:
        self.terminal.flush()


def record(name: str, args: list[str], results: Path = RESULTS) -> int:
    module = importlib.import_module(f"bench.{name}")
    tee = _Tee()
    with contextlib.redirect_stdout(tee):
        try:
            status = module.main(args)
        except SystemExit as stop:
            # a run that missed a target exits 1 and is kept; a refusal (a message) is not a run
            if not isinstance(stop.code, int | None):
                raise
            status = stop.code
    printed = tee.getvalue()
    ran = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = " ".join(["python -m bench." + name, *args])
    results.mkdir(parents=True, exist_ok=True)
    stem = name + "".join(re.sub(r"[^A-Za-z0-9_.-]", "", a) for a in args if a != "--json")
    try:
        document = json.loads(printed)
    except ValueError:
        (results / f"{stem}.txt").write_text(f"# {command}, {ran}\n{printed}")
    else:
        record = {"command": command, "ran": ran, "report": document}
        (results / f"{stem}.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    return int(status or 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    return record(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main())
