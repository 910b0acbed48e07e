"""The run index: every run folder under a reports folder, for `history` and label look-ups.

`<out_dir>/index.sqlite` (index_sqlite.py) holds one row per run and one per (run, segment)
break, so queries need not read every `summary.json`. The folders stay the source of truth:
each query first syncs the rows with the folders by their file stamps (size and mtime of
run.json and summary.json), so a run published without touching the index is still found.
Standard library only; no locust.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from breakpoint.errors import StoreError
from breakpoint.runs.index_sqlite import (
    INDEX_FILE,
    INDEX_SCHEMA,
    connect,
    ensure_schema,
    index_path,
    open_index,
    replace_run,
    transaction,
)
from breakpoint.runs.store import RUN_FILE
from breakpoint.runs.summary import (
    SUMMARY_FILE,
    BreakPoint,
    Fingerprint,
    RunSummary,
    SegmentSummary,
    _number,
    _text,
    read_summary,
)

__all__ = [
    "INDEX_FILE",
    "INDEX_SCHEMA",
    "IndexedBreak",
    "IndexedRun",
    "index_path",
    "indexed_labels",
    "indexed_runs",
    "rebuild_index",
    "sync_index",
    "update_index",
]

# Fingerprint fields stored in their own columns (emulation and model have theirs).
_FINGERPRINT_COLUMNS = (
    ("scenario", "scenario_fp"),
    ("profiles", "profiles_fp"),
    ("plan", "plan_fp"),
    ("target", "target_fp"),
)


@dataclass(frozen=True)
class IndexedBreak:
    """One segment's breaking point in one run, as summary.json states it."""

    profile: str
    multiplier: float | None
    low: float | None
    high: float | None
    label: str | None  # "bracketed", "extrapolated", "not_reached"
    criterion: str | None

    def to_break(self) -> BreakPoint:
        return BreakPoint(self.multiplier, self.low, self.high, self.label, self.criterion)

    def to_dict(self) -> dict[str, Any]:
        return self.to_break().to_dict()


@dataclass(frozen=True)
class IndexedRun:
    """One run as the index knows it; `has_summary` is False for unpublished (killed) runs."""

    path: Path
    run_id: str
    label: str
    created_at: float | None
    git_rev: str | None
    status: str | None
    model: str | None
    fingerprint: Fingerprint | None
    breakpoint_version: str | None
    first_to_break: str | None
    has_summary: bool
    breaks: tuple[IndexedBreak, ...] = ()

    def as_summary(self) -> RunSummary:
        """The part of the run's summary that the history trend reads."""
        return RunSummary(
            run_id=self.run_id,
            label=self.label,
            model=self.model,
            created_at=self.created_at,
            status=self.status,
            git_rev=self.git_rev,
            first_to_break=self.first_to_break,
            fingerprint=self.fingerprint,
            segments=tuple(SegmentSummary(b.profile, b.to_break()) for b in self.breaks),
            breakpoint_version=self.breakpoint_version,
        )


# -- reading one run folder --------------------------------------------------------------------


def _stamp(folder: Path) -> str:
    """Changes whenever run.json or summary.json is rewritten (writes are atomic replaces)."""
    parts = []
    for name in (RUN_FILE, SUMMARY_FILE):
        try:
            st = (folder / name).stat()
            parts.append(f"{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append("-")
    return "|".join(parts)


def _read_info(path: Path) -> Mapping[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _summary_of(folder: Path) -> RunSummary | None:
    """The folder's summary; None when it has none this version can read (then the run is
    indexed as unpublished)."""
    if not (folder / SUMMARY_FILE).is_file():
        return None
    with contextlib.suppress(StoreError):
        return read_summary(folder)
    return None


def _from_run_json(info: Mapping[str, Any]) -> RunSummary:
    """What run.json says about a run that has no readable summary."""
    versions = info.get("versions")
    return RunSummary(
        run_id=_text(info.get("run_id")),
        label=_text(info.get("label")),
        model=_text(info.get("model")),
        created_at=_number(info.get("created_at")),
        status=_text(info.get("status")),
        git_rev=_text(info.get("git_rev")),
        breakpoint_version=_text(versions.get("breakpoint"))
        if isinstance(versions, Mapping)
        else None,
    )


def _rows_of(folder: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The run row and segment rows of a run folder; no row when it is not a readable run."""
    info = _read_info(folder / RUN_FILE)
    if info is None:
        return None, []
    summary = _summary_of(folder)
    known = summary or _from_run_json(info)
    plan = info.get("plan")
    model = known.model or (plan.get("model") if isinstance(plan, Mapping) else None)
    fingerprint = known.fingerprint
    row: dict[str, Any] = {
        "path": folder.name,
        "run_id": str(known.run_id or info.get("run_id") or folder.name),
        "label": known.label if known.label is not None else _text(info.get("label")),
        "created_at": known.created_at
        if known.created_at is not None
        else _number(info.get("created_at")),
        "git_rev": known.git_rev if known.git_rev is not None else _text(info.get("git_rev")),
        # run.json may be newer than the summary (a run re-published after it was killed).
        "status": _text(info.get("status", known.status)),
        "model": _text(model),
        "emulation": None
        if fingerprint is None or fingerprint.emulation is None
        else int(fingerprint.emulation),
        "breakpoint_version": known.breakpoint_version,
        "first_to_break": known.first_to_break,
        "has_summary": int(summary is not None),
        "stamp": _stamp(folder),
    }
    for key, column in _FINGERPRINT_COLUMNS:
        row[column] = getattr(fingerprint, key) if fingerprint else None
    segments = [
        {
            "path": folder.name,
            "position": position,
            "profile": seg.profile,
            **(seg.breaking or BreakPoint(None, None, None, None, None)).to_dict(),
        }
        for position, seg in enumerate(known.segments)
    ]
    return row, segments


# -- keeping the rows in line with the folders -------------------------------------------------


def _upsert(conn: sqlite3.Connection, folder: Path) -> None:
    replace_run(conn, folder.name, *_rows_of(folder))


def _folders(out_dir: Path) -> dict[str, Path]:
    try:
        return {p.name: p for p in out_dir.iterdir() if (p / RUN_FILE).is_file()}
    except OSError:
        return {}


def _sync(conn: sqlite3.Connection, out_dir: Path) -> int:
    """Bring the rows in line with the folders; returns how many rows changed."""
    with transaction(conn):
        known = {r["path"]: r["stamp"] for r in conn.execute("SELECT path, stamp FROM runs")}
        folders = _folders(out_dir)
        changed = 0
        for name in known.keys() - folders.keys():
            conn.execute("DELETE FROM runs WHERE path = ?", (name,))
            changed += 1
        for name, folder in sorted(folders.items()):
            if known.get(name) != _stamp(folder):
                _upsert(conn, folder)
                changed += 1
    return changed


@contextlib.contextmanager
def _synced(out_dir: Path) -> Iterator[sqlite3.Connection]:
    """A connection to an index in line with the folders.

    When the index file cannot be written (a read-only reports folder, say), an in-memory
    index is built from the folders instead: slower, never wrong.
    """
    if not out_dir.is_dir():
        raise StoreError(f"{out_dir}: no such reports folder")
    try:
        conn = open_index(out_dir)
        try:
            _sync(conn, out_dir)
        except sqlite3.Error:
            conn.close()
            raise
    except sqlite3.Error:
        conn = connect(":memory:")
        ensure_schema(conn)
        _sync(conn, out_dir)
    try:
        yield conn
    finally:
        conn.close()


# -- public API --------------------------------------------------------------------------------


def update_index(out_dir: Path, run_dir: Path) -> bool:
    """Index (or re-index) one run folder after it was published; idempotent.

    Never fails the caller for a cache problem: returns False when the index could not be
    written (it catches up with the folders on its next sync), True otherwise. A folder that
    no longer exists is removed from the index.
    """
    if run_dir.resolve().parent != out_dir.resolve():
        return False  # the index describes the runs directly inside this reports folder
    try:
        conn = open_index(out_dir)
    except (sqlite3.Error, OSError):
        return False
    try:
        with transaction(conn):
            _upsert(conn, out_dir / run_dir.name)
    except (sqlite3.Error, OSError):
        return False
    finally:
        conn.close()
    return True


def rebuild_index(out_dir: Path) -> int:
    """Rebuild the index from the run folders' run.json and summary.json; returns runs indexed."""
    if not out_dir.is_dir():
        raise StoreError(f"{out_dir}: no such reports folder")
    try:
        conn = open_index(out_dir)
        try:
            with transaction(conn):
                conn.execute("DELETE FROM segments")
                conn.execute("DELETE FROM runs")
            _sync(conn, out_dir)
            return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{index_path(out_dir)}: cannot write the run index ({exc})") from None


def sync_index(out_dir: Path) -> int:
    """Create the index if missing and bring it in line with the folders; returns runs indexed."""
    with _synced(out_dir) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


def _run_of(row: sqlite3.Row, breaks: tuple[IndexedBreak, ...], out_dir: Path) -> IndexedRun:
    fingerprint = None
    if row["has_summary"]:
        fingerprint = Fingerprint(
            **{key: row[column] for key, column in _FINGERPRINT_COLUMNS},
            model=row["model"],
            emulation=None if row["emulation"] is None else bool(row["emulation"]),
        )
    return IndexedRun(
        path=out_dir / row["path"],
        run_id=row["run_id"],
        label=row["label"] or "",
        created_at=row["created_at"],
        git_rev=row["git_rev"],
        status=row["status"],
        model=row["model"],
        fingerprint=fingerprint,
        breakpoint_version=row["breakpoint_version"],
        first_to_break=row["first_to_break"],
        has_summary=bool(row["has_summary"]),
        breaks=breaks,
    )


def indexed_runs(out_dir: Path, *, label: str | None = None) -> list[IndexedRun]:
    """Runs under the reports folder (or those with one label), oldest first; syncs first.

    Undated runs come last; ties are broken by folder name (which starts with the time).
    """
    with _synced(out_dir) as conn:
        where, args = ("WHERE label = ?", (label,)) if label is not None else ("", ())
        rows = conn.execute(
            f"SELECT * FROM runs {where} ORDER BY created_at IS NULL, created_at, path",
            args,
        ).fetchall()
        names = [f.name for f in fields(IndexedBreak)]
        breaks: dict[str, list[IndexedBreak]] = {}
        for seg in conn.execute("SELECT * FROM segments ORDER BY path, position"):
            breaks.setdefault(seg["path"], []).append(IndexedBreak(*(seg[n] for n in names)))
        return [_run_of(r, tuple(breaks.get(r["path"], ())), out_dir) for r in rows]


def indexed_labels(out_dir: Path) -> list[str]:
    """Distinct run labels in the order their first run was made."""
    seen: list[str] = []
    for run in indexed_runs(out_dir):
        if run.label not in seen:
            seen.append(run.label)
    return seen
