"""Where throwaway clusters keep their files: memory when it has room, disk otherwise."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from devtools import throwaway


def _made_in(monkeypatch: pytest.MonkeyPatch, memory: Path, min_free: int) -> Path:
    monkeypatch.setattr(throwaway, "MEMORY_SCRATCH", memory)
    monkeypatch.setattr(throwaway, "MEMORY_SCRATCH_MIN_FREE", min_free)
    directory = throwaway.scratch_directory("guard-scratch-test-")
    try:
        assert directory.is_dir() and not any(directory.iterdir())
        assert directory.stat().st_mode & 0o777 == 0o755  # the server's OS user may enter
        return directory.parent
    finally:
        shutil.rmtree(directory)


def test_memory_is_used_when_it_has_the_room(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    usage = os.statvfs(tmp_path)
    free = usage.f_bavail * usage.f_frsize
    assert _made_in(monkeypatch, tmp_path, min_free=free // 2) == tmp_path


def test_disk_is_used_when_memory_lacks_room_or_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    usage = os.statvfs(tmp_path)
    free = usage.f_bavail * usage.f_frsize
    assert _made_in(monkeypatch, tmp_path, min_free=free * 2) == throwaway.DISK_SCRATCH
    assert _made_in(monkeypatch, tmp_path / "missing", min_free=0) == throwaway.DISK_SCRATCH


def test_two_directories_are_never_the_same() -> None:
    first = throwaway.scratch_directory("guard-scratch-test-")
    second = throwaway.scratch_directory("guard-scratch-test-")
    try:
        assert first != second
    finally:
        shutil.rmtree(first)
        shutil.rmtree(second)


def test_docs_name_the_place_and_the_room() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "testing.md").read_text()
    prose = " ".join(text.split())
    gib = throwaway.MEMORY_SCRATCH_MIN_FREE // 2**30
    assert f"in `{throwaway.MEMORY_SCRATCH}` (memory) when it has {gib} GiB free" in prose
    assert f"else under `{throwaway.DISK_SCRATCH}`" in prose
