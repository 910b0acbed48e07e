"""The SQLite side of the run index: its tables, their version, connections and transactions.

The index is a cache of the run folders (docs/design.md#comparison): a file of an unknown
schema version is emptied and recreated, a damaged file replaced. Every write is one
`BEGIN IMMEDIATE` transaction with a busy timeout, so several processes may write at once.
Standard library only.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

INDEX_FILE = "index.sqlite"
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


def index_path(out_dir: Path) -> Path:
    return out_dir / INDEX_FILE


def connect(target: Path | str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so the write lock is taken
    # before reading, not on the first write (which could deadlock two upgrading readers).
    conn = sqlite3.connect(str(target), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
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


def ensure_schema(conn: sqlite3.Connection) -> bool:
    """Create the tables, or drop and recreate them when their version is unknown.

    Returns True when the tables were (re)created empty and need filling from the folders.
    """
    if _schema_version(conn) == INDEX_SCHEMA:
        return False
    # Off while dropping, so tables go in any order (the pragma is a no-op inside a transaction).
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        with transaction(conn):
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


def open_index(out_dir: Path) -> sqlite3.Connection:
    """The index of a reports folder with current tables; a damaged file is replaced."""
    path = index_path(out_dir)
    for attempt in range(2):
        conn = connect(path)
        try:
            ensure_schema(conn)
            return conn
        except sqlite3.DatabaseError as exc:
            conn.close()
            # "file is not a database" and friends: it is only a cache, start again once.
            if attempt or isinstance(exc, sqlite3.OperationalError):
                raise
            _discard(path)
    raise AssertionError("unreachable")


def replace_run(
    conn: sqlite3.Connection, name: str, row: dict[str, Any] | None, segments: list[dict[str, Any]]
) -> None:
    """Replace the rows of the run folder `name` (none when `row` is None: it is no run)."""
    conn.execute("DELETE FROM runs WHERE path = ?", (name,))  # cascades to segments
    if row is None:
        return
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
