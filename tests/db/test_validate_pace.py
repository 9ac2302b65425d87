"""`guard db validate` paces its reconcile: after every batch but the last it pauses for
--pause-ratio times the batch's own time, so what the batches write reaches the disk in between.
The pauses are recorded rather than slept; the batches are real transactions on a legacy
database (each rewrites its calls, so their row versions count the batches)."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from guard.cli import main
from guard.schema.validate import validate
from tests.support.queries import fetch_one


class PauseRecorder:
    """Takes the place of time.sleep: notes each pause and the time since the previous one."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.pauses: list[tuple[float, float]] = []  # (pause, seconds of work before it)

    def __call__(self, seconds: float) -> None:
        now = time.monotonic()
        self.pauses.append((seconds, now - self.last))
        self.last = now


def _batches(url: str) -> int:
    row = fetch_one(url, "SELECT count(DISTINCT xmin::text) FROM calls")
    assert row is not None
    return int(row[0])


def test_validate_pauses_after_every_batch_but_the_last_for_its_share_of_the_batch(
    legacy_db_url: str,
) -> None:
    recorder = PauseRecorder()
    report = validate(legacy_db_url, batch_size=4000, pause_ratio=0.5, sleep=recorder)
    assert report.complete, report.constraints
    batches = _batches(legacy_db_url)
    assert batches > 2, "the legacy database takes several batches"
    assert len(recorder.pauses) == batches - 1
    for pause, worked in recorder.pauses:
        assert 0 < pause <= 0.5 * worked, (pause, worked)


def test_validate_with_pause_ratio_zero_never_pauses(legacy_db_url: str) -> None:
    recorder = PauseRecorder()
    report = validate(legacy_db_url, batch_size=4000, pause_ratio=0, sleep=recorder)
    assert report.complete, report.constraints
    assert _batches(legacy_db_url) > 2
    assert recorder.pauses == []


@pytest.mark.parametrize("ratio", ["-0.1", "10.5", "nan", "inf", "half"])
def test_the_cli_refuses_a_pause_ratio_out_of_range_and_changes_nothing(
    legacy_db_url: str, ratio: str
) -> None:
    before = fetch_one(legacy_db_url, "SELECT count(*) FROM guard.correction_audit")
    result = CliRunner().invoke(
        main, ["--database-url", legacy_db_url, "db", "validate", "--pause-ratio", ratio]
    )
    assert result.exit_code != 0
    assert "pause-ratio" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    after = fetch_one(legacy_db_url, "SELECT count(*) FROM guard.correction_audit")
    assert after == before


def test_validate_refuses_a_pause_ratio_out_of_range(empty_db_url: str) -> None:
    with pytest.raises(ValueError, match="pause_ratio"):
        validate(empty_db_url, pause_ratio=float("nan"))
