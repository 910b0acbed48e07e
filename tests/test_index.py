"""Tests for breakpoint.runs.index: the SQLite run index, a cache the run folders can rebuild."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from breakpoint.analysis.release_history import history
from breakpoint.runs.index import (
    INDEX_FILE,
    INDEX_SCHEMA,
    indexed_labels,
    indexed_runs,
    rebuild_index,
    sync_index,
    update_index,
)
from breakpoint.runs.store import write_json
from breakpoint.runs.summary import Fingerprint

T0 = 1_700_000_000.0
FINGERPRINT = {
    "scenario": "s" * 16,
    "profiles": "p" * 16,
    "plan": "q" * 16,
    "target": "embedded workers=8",
    "model": "open",
    "emulation": True,
}


def write_run(
    out_dir: Path,
    name: str,
    label: str,
    *,
    hours: float,
    breaks: Mapping[str, float | None] | None = None,
    summary: bool = True,
    status: str = "complete",
) -> Path:
    """A run folder with run.json and (unless summary=False) a summary.json."""
    folder = out_dir / name
    folder.mkdir(parents=True)
    info: dict[str, Any] = {
        "schema": 1,
        "run_id": name,
        "label": label,
        "created_at": T0 + 3600 * hours,
        "status": status,
        "git_rev": "1234abcd",
        "versions": {"breakpoint": "0.1.0"},
        "plan": {"model": "open"},
    }
    write_json(folder / "run.json", info)
    if summary:
        segments = []
        for profile, value in (breaks or {"android-lowend-3g": 9.7}).items():
            if value is None:
                brk = {"multiplier": None, "low": 10.0, "high": None, "label": "not_reached"}
            else:
                brk = {"multiplier": value, "low": value * 0.95, "high": value * 1.05}
                brk["label"] = "bracketed"
            segments.append({"profile": profile, "break": {**brk, "criterion": "latency"}})
        write_json(
            folder / "summary.json",
            {
                **info,
                "schema": 1,
                "model": "open",
                "first_to_break": segments[0]["profile"],
                "fingerprint": FINGERPRINT,
                "segments": segments,
            },
        )
    return folder


def test_rebuild_indexes_every_run_with_its_breaks(tmp_path: Path) -> None:
    """Rebuilding reads every folder: run rows in time order, segment rows in summary order."""
    write_run(tmp_path, "b", "v2", hours=2, breaks={"lowend": 6.8, "desktop": None})
    write_run(tmp_path, "a", "v1", hours=1, breaks={"lowend": 9.7, "desktop": None})
    write_run(tmp_path, "c", "v3", hours=3, summary=False, status="interrupted")
    (tmp_path / "compare-x-vs-y").mkdir()  # not a run folder: ignored
    assert rebuild_index(tmp_path) == 3
    runs = indexed_runs(tmp_path)
    assert [r.run_id for r in runs] == ["a", "b", "c"]
    a, _, c = runs
    assert a.path == tmp_path / "a" and a.label == "v1" and a.git_rev == "1234abcd"
    assert (
        a.fingerprint == Fingerprint.from_dict(FINGERPRINT)
        and a.model == "open"
        and a.breakpoint_version == "0.1.0"
    )
    assert [(b.profile, b.multiplier, b.label) for b in a.breaks] == [
        ("lowend", 9.7, "bracketed"),
        ("desktop", None, "not_reached"),
    ]
    assert not c.has_summary and c.status == "interrupted" and c.breaks == ()
    assert c.fingerprint is None
    assert indexed_labels(tmp_path) == ["v1", "v2", "v3"]
    assert [r.run_id for r in indexed_runs(tmp_path, label="v2")] == ["b"]


def test_update_index_is_idempotent_and_follows_changes(tmp_path: Path) -> None:
    """Updating twice leaves one row; a re-published summary replaces the row's breaks."""
    run = write_run(tmp_path, "a", "v1", hours=1, breaks={"lowend": 9.7})
    assert update_index(tmp_path, run) and update_index(tmp_path, run)
    with sqlite3.connect(tmp_path / INDEX_FILE) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == 1
    (run / "summary.json").unlink()
    (run / "run.json").unlink()
    write_run(tmp_path / "tmp", "a", "v1", hours=1, breaks={"lowend": 7.0, "desktop": 8.0})
    for name in ("run.json", "summary.json"):
        (tmp_path / "tmp" / "a" / name).rename(run / name)
    assert update_index(tmp_path, run)
    (only,) = [r for r in indexed_runs(tmp_path) if r.run_id == "a"]
    assert [(b.profile, b.multiplier) for b in only.breaks] == [("lowend", 7.0), ("desktop", 8.0)]


def test_update_index_ignores_folders_elsewhere(tmp_path: Path) -> None:
    """The index describes the runs directly inside its reports folder, nothing else."""
    other = write_run(tmp_path / "elsewhere", "x", "v1", hours=1)
    (tmp_path / "reports").mkdir()
    assert update_index(tmp_path / "reports", other) is False


def test_queries_sync_with_folders_added_or_removed_behind_the_index(tmp_path: Path) -> None:
    """A run published without update_index is found; a deleted folder disappears."""
    write_run(tmp_path, "a", "v1", hours=1)
    assert sync_index(tmp_path) == 1
    write_run(tmp_path, "b", "v2", hours=2)
    assert [r.run_id for r in indexed_runs(tmp_path)] == ["a", "b"]
    for name in ("run.json", "summary.json"):
        (tmp_path / "a" / name).unlink()
    (tmp_path / "a").rmdir()
    assert [r.run_id for r in indexed_runs(tmp_path)] == ["b"]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param("version", id="unknown-version"),
        pytest.param("garbage", id="not-a-database"),
        pytest.param("deleted", id="deleted"),
    ],
)
def test_an_untrusted_index_is_rebuilt(tmp_path: Path, damage: str) -> None:
    """An index of another schema version, a damaged file or no file is rebuilt from folders."""
    write_run(tmp_path, "a", "v1", hours=1)
    sync_index(tmp_path)
    path = tmp_path / INDEX_FILE
    if damage == "version":
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema'")
            conn.execute("DELETE FROM runs")  # a future version's rows are not to be trusted
    elif damage == "garbage":
        path.write_bytes(b"this is not a database\x00" * 100)
    else:
        path.unlink()
    assert [r.run_id for r in indexed_runs(tmp_path)] == ["a"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == str(
            INDEX_SCHEMA
        )


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_reports_folder_is_still_listed(tmp_path: Path) -> None:
    """When the index cannot be written, an in-memory one is built from the folders."""
    write_run(tmp_path, "a", "v1", hours=1)
    tmp_path.chmod(0o555)
    try:
        assert [r.run_id for r in indexed_runs(tmp_path)] == ["a"]
        assert update_index(tmp_path, tmp_path / "a") is False
    finally:
        tmp_path.chmod(0o755)


def test_an_unwritable_index_path_falls_back_to_memory(tmp_path: Path) -> None:
    """Even where no index file can be opened at all, queries answer from the folders."""
    write_run(tmp_path, "a", "v1", hours=1)
    (tmp_path / INDEX_FILE).mkdir()  # something in the way that sqlite cannot open
    assert [r.run_id for r in indexed_runs(tmp_path)] == ["a"]
    assert update_index(tmp_path, tmp_path / "a") is False


def test_indexed_runs_feed_the_history_trend(tmp_path: Path) -> None:
    """as_summary() carries what the history trend needs: labels in time order, pooled breaks."""
    write_run(tmp_path, "a1", "v1", hours=1, breaks={"lowend": 9.0})
    write_run(tmp_path, "a2", "v1", hours=2, breaks={"lowend": 10.0})
    write_run(tmp_path, "b1", "v2", hours=3, breaks={"lowend": 6.0})
    trend = history([r.as_summary() for r in indexed_runs(tmp_path)])
    points = trend["lowend"]
    assert [p["label"] for p in points] == ["v1", "v2"]
    assert points[0]["runs"] == 2 and points[0]["multiplier"] == pytest.approx(90**0.5)


WRITER = """
import sys
from pathlib import Path
from breakpoint.runs.index import update_index, sync_index
out = Path(sys.argv[1])
for name in sys.argv[2:]:
    assert update_index(out, out / name), name
    sync_index(out)
"""


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """Three processes updating and syncing one index at once leave every run in it."""
    names = [f"run{i:02d}" for i in range(24)]
    for i, name in enumerate(names):
        write_run(tmp_path, name, f"v{i % 3}", hours=i)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), *names[k::3]],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(3)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
    with sqlite3.connect(tmp_path / INDEX_FILE) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == len(names)
        assert conn.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == len(names)
