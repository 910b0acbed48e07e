"""The run index: a SQLite cache of every run folder under a reports folder.

`<out_dir>/index.sqlite` holds one row per run (identity, label, time, git revision, status,
fingerprints, versions) and one row per (run, segment) breaking point, so `history` and label
look-ups need not read every `summary.json`. The run folders stay the source of truth: the index
can be deleted at any time, an index of an unknown schema version (or an unreadable file) is
rebuilt rather than trusted, and `sync_index` brings it up to date with the folders by comparing
each folder's file stamps (size and modification time of run.json and summary.json), so a run
published by a process that never touched the index is still found.

Several processes may write at once (two CI jobs sharing a reports folder): every write is one
`BEGIN IMMEDIATE` transaction that reads the folder inside the lock, with a busy timeout, and
rows are replaced, never appended, so updates are idempotent. Standard library only; no locust.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from breakpoint.errors import StoreError
from breakpoint.runs.store import RUN_FILE

INDEX_FILE = "index.sqlite"
# publish.SUMMARY_FILE and summary.SUMMARY_SCHEMA, repeated here: importing them would pull
# numpy and the analysis into a module that only needs the standard library.
SUMMARY_FILE = "summary.json"
_SUMMARY_SCHEMAS = (1,)
# Version of the index tables; an index of any other version is dropped and rebuilt.
# 1: first version.
INDEX_SCHEMA = 1
# Long enough to wait out another process's sync of a few thousand folders.
BUSY_TIMEOUT_S = 30.0

_TABLES = (
    """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    # path: the run folder's name under the reports folder (moving the folder keeps the index
    # valid). stamp: sizes and mtimes of run.json and summary.json when the row was written.
    """CREATE TABLE runs (
        path TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        label TEXT,
        created_at REAL,
        git_rev TEXT,
        status TEXT,
        model TEXT,
        scenario_fp TEXT,
        profiles_fp TEXT,
        plan_fp TEXT,
        target_fp TEXT,
        emulation INTEGER,
        breakpoint_version TEXT,
        first_to_break TEXT,
        has_summary INTEGER NOT NULL,
        stamp TEXT NOT NULL
    )""",
    """CREATE TABLE segments (
        path TEXT NOT NULL REFERENCES runs(path) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        profile TEXT NOT NULL,
        multiplier REAL,
        low REAL,
        high REAL,
        label TEXT,
        criterion TEXT,
        PRIMARY KEY (path, profile)
    )""",
    "CREATE INDEX runs_by_time ON runs (created_at, path)",
    "CREATE INDEX runs_by_label ON runs (label, created_at)",
)
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "multiplier": self.multiplier,
            "low": self.low,
            "high": self.high,
            "label": self.label,
            "criterion": self.criterion,
        }


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
    fingerprint: Mapping[str, Any] | None
    breakpoint_version: str | None
    first_to_break: str | None
    has_summary: bool
    breaks: tuple[IndexedBreak, ...] = ()

    def as_summary(self) -> dict[str, Any]:
        """The part of summary.json that compare.history reads."""
        return {
            "run_id": self.run_id,
            "label": self.label,
            "created_at": self.created_at,
            "git_rev": self.git_rev,
            "status": self.status,
            "segments": [{"profile": b.profile, "break": b.to_dict()} for b in self.breaks],
        }


# --------------------------------------------------------------------------------------------
# Reading one run folder


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


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _row_of(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The run row and segment rows of a run folder; None when it is not a readable run."""
    info = _read_json(folder / RUN_FILE)
    if info is None:
        return None
    summary = _read_json(folder / SUMMARY_FILE)
    if summary is not None and summary.get("schema") not in _SUMMARY_SCHEMAS:
        summary = None  # a summary this version cannot read: index the run as unpublished
    source = summary if summary is not None else info
    fingerprint = _mapping(summary.get("fingerprint")) if summary is not None else {}
    versions = _mapping(source.get("versions"))
    model = source.get("model") or _mapping(info.get("plan")).get("model")
    row: dict[str, Any] = {
        "path": folder.name,
        "run_id": str(source.get("run_id") or info.get("run_id") or folder.name),
        "label": _text(source.get("label", info.get("label"))),
        "created_at": _number(source.get("created_at", info.get("created_at"))),
        "git_rev": _text(source.get("git_rev", info.get("git_rev"))),
        # run.json may be newer than the summary (a run re-published after it was killed).
        "status": _text(info.get("status", source.get("status"))),
        "model": _text(model),
        "emulation": int(bool(fingerprint["emulation"])) if "emulation" in fingerprint else None,
        "breakpoint_version": _text(versions.get("breakpoint")),
        "first_to_break": _text(summary.get("first_to_break")) if summary else None,
        "has_summary": int(summary is not None),
        "stamp": _stamp(folder),
    }
    for key, column in _FINGERPRINT_COLUMNS:
        row[column] = _text(fingerprint.get(key))
    segments = []
    for position, seg in enumerate((summary or {}).get("segments") or []):
        if not isinstance(seg, Mapping) or "profile" not in seg:
            continue
        brk = _mapping(seg.get("break"))
        segments.append(
            {
                "path": folder.name,
                "position": position,
                "profile": str(seg["profile"]),
                "multiplier": _number(brk.get("multiplier")),
                "low": _number(brk.get("low")),
                "high": _number(brk.get("high")),
                "label": _text(brk.get("label")),
                "criterion": _text(brk.get("criterion")),
            }
        )
    return row, segments


# --------------------------------------------------------------------------------------------
# Connection, schema and transactions


def index_path(out_dir: Path) -> Path:
    return out_dir / INDEX_FILE


def _connect(target: Path | str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so the write lock is taken
    # before reading, not on the first write (which could deadlock two upgrading readers).
    conn = sqlite3.connect(str(target), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextlib.contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _schema_version(conn: sqlite3.Connection) -> int | None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.OperationalError:  # no meta table: a new (empty) or foreign file
        return None
    try:
        return int(row["value"]) if row else None
    except ValueError:
        return None


def _ensure_schema(conn: sqlite3.Connection) -> bool:
    """Create the tables, or drop and recreate them when their version is unknown.

    Returns True when the tables were (re)created empty and need filling from the folders.
    """
    if _schema_version(conn) == INDEX_SCHEMA:
        return False
    # Off while dropping, so tables go in any order (the pragma is a no-op inside a transaction).
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        with _write(conn):
            if _schema_version(conn) == INDEX_SCHEMA:  # another process created it meanwhile
                return False
            names = [
                (r["type"], r["name"])
                for r in conn.execute(
                    "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            ]
            for kind, name in names:
                conn.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
            for statement in _TABLES:
                conn.execute(statement)
            conn.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(INDEX_SCHEMA),))
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    return True


def _discard(path: Path) -> None:
    for name in (path.name, f"{path.name}-journal", f"{path.name}-wal", f"{path.name}-shm"):
        with contextlib.suppress(FileNotFoundError):
            (path.parent / name).unlink()


def _open_index(out_dir: Path) -> sqlite3.Connection:
    """The index of a reports folder with current tables; a damaged file is replaced."""
    path = index_path(out_dir)
    for attempt in range(2):
        conn = _connect(path)
        try:
            _ensure_schema(conn)
            return conn
        except sqlite3.DatabaseError as exc:
            conn.close()
            # "file is not a database" and friends: it is only a cache, start again once.
            if attempt or isinstance(exc, sqlite3.OperationalError):
                raise
            _discard(path)
    raise AssertionError("unreachable")


def _upsert(conn: sqlite3.Connection, folder: Path) -> None:
    conn.execute("DELETE FROM runs WHERE path = ?", (folder.name,))  # cascades to segments
    parsed = _row_of(folder)
    if parsed is None:
        return
    row, segments = parsed
    columns = ", ".join(row)
    conn.execute(
        f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
    )
    conn.executemany(
        "INSERT OR REPLACE INTO segments (path, position, profile, multiplier, low, high, label,"
        " criterion) VALUES (:path, :position, :profile, :multiplier, :low, :high, :label,"
        " :criterion)",
        segments,
    )


def _folders(out_dir: Path) -> dict[str, Path]:
    try:
        return {p.name: p for p in out_dir.iterdir() if (p / RUN_FILE).is_file()}
    except OSError:
        return {}


def _sync(conn: sqlite3.Connection, out_dir: Path) -> int:
    """Bring the rows in line with the folders; returns how many rows changed."""
    with _write(conn):
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
        conn = _open_index(out_dir)
        try:
            _sync(conn, out_dir)
        except sqlite3.Error:
            conn.close()
            raise
    except sqlite3.Error:
        conn = _connect(":memory:")
        _ensure_schema(conn)
        _sync(conn, out_dir)
    try:
        yield conn
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# Public API


def update_index(out_dir: Path, run_dir: Path) -> bool:
    """Index (or re-index) one run folder after it was published; idempotent.

    Never fails the caller for a cache problem: returns False when the index could not be
    written (it catches up with the folders on its next sync), True otherwise. A folder that
    no longer exists is removed from the index.
    """
    if run_dir.resolve().parent != out_dir.resolve():
        return False  # the index describes the runs directly inside this reports folder
    try:
        conn = _open_index(out_dir)
    except (sqlite3.Error, OSError):
        return False
    try:
        with _write(conn):
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
        conn = _open_index(out_dir)
        try:
            with _write(conn):
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
        fingerprint = {key: row[column] for key, column in _FINGERPRINT_COLUMNS}
        fingerprint["model"] = row["model"]
        if row["emulation"] is not None:
            fingerprint["emulation"] = bool(row["emulation"])
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
        breaks: dict[str, list[IndexedBreak]] = {}
        for seg in conn.execute("SELECT * FROM segments ORDER BY path, position"):
            breaks.setdefault(seg["path"], []).append(
                IndexedBreak(
                    seg["profile"],
                    seg["multiplier"],
                    seg["low"],
                    seg["high"],
                    seg["label"],
                    seg["criterion"],
                )
            )
        return [_run_of(r, tuple(breaks.get(r["path"], ())), out_dir) for r in rows]


def indexed_labels(out_dir: Path) -> list[str]:
    """Distinct run labels in the order their first run was made."""
    seen: list[str] = []
    for run in indexed_runs(out_dir):
        if run.label not in seen:
            seen.append(run.label)
    return seen
