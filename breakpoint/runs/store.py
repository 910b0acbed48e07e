"""Runs on disk: one folder per run under the reports folder.

A run folder holds `run.json` (what was run: plan, profiles, scenario, target, versions, status),
`steps.jsonl` (one record per step per segment, appended and fsync'ed as each step closes, so a
run killed midway keeps every step it measured), and the outputs `summary.json`, `summary.md`,
`report.html`. A record may be written twice for a step: provisional when the step closes and
final once its in-flight requests drained; the last one wins when reading.

This is the reading side and the file names; a run writes through `load/writer.py`, whose
background thread must work under gevent's monkey-patching.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from breakpoint.errors import StoreError
from breakpoint.results import StepResult, group_records

# Version of run.json; bump with a note when fields change.
# 1: first version.
RUN_SCHEMA = 1
RUN_FILE = "run.json"
STEPS_FILE = "steps.jsonl"
SERIES_FILE = "series.json"  # a surge's per-second series (load/timeline.py), rewritten whole


def read_series(path: Path) -> dict[str, Any] | None:
    """A surge run's series.json, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((path / SERIES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class StoredRun:
    """A run read back from disk."""

    path: Path
    info: Mapping[str, Any]
    steps: list[StepResult]
    warnings: tuple[str, ...] = ()

    @property
    def run_id(self) -> str:
        return str(self.info.get("run_id", self.path.name))

    @property
    def label(self) -> str:
        return str(self.info.get("label", ""))


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file, fsync'ed, then renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    """`data` as indented JSON, written atomically."""
    write_atomic(path, json_text(data))


def json_text(data: Any) -> str:
    """The JSON text run.json and the summaries are written as."""
    return json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, set | tuple):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_records(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Step records of a run; a torn last line (the run was killed mid-write) is skipped."""
    records: list[dict[str, Any]] = []
    warnings: list[str] = []
    steps_file = path / STEPS_FILE
    if not steps_file.exists():
        return records, warnings
    lines = steps_file.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            warnings.append(f"{steps_file}:{number}: unreadable record skipped (torn write?)")
    # Keep the last record per (step, segment): a final record supersedes a provisional one.
    last: dict[tuple[int, str], dict[str, Any]] = {}
    for rec in records:
        if rec.get("kind") == "segment_step":
            last[(int(rec["step"]), str(rec["segment"]))] = rec
    return list(last.values()), warnings


def load_run(path: Path) -> StoredRun:
    """Read a run folder (complete or partial)."""
    run_file = path / RUN_FILE
    if not run_file.is_file():
        raise StoreError(f"{path}: not a run folder (no {RUN_FILE})")
    try:
        info = json.loads(run_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StoreError(f"{run_file}: unreadable ({exc})") from None
    schema = info.get("schema")
    if schema != RUN_SCHEMA:
        raise StoreError(
            f"{run_file}: schema {schema!r} is not supported by this version (expects {RUN_SCHEMA})"
        )
    records, warnings = read_records(path)
    try:
        steps = group_records(records)
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"{path / STEPS_FILE}: malformed step record ({exc})") from None
    return StoredRun(path, info, steps, tuple(warnings))


def list_runs(out_dir: Path) -> list[Path]:
    """Run folders under the reports folder, oldest first."""
    if not out_dir.is_dir():
        return []
    runs = [p for p in out_dir.iterdir() if (p / RUN_FILE).is_file()]
    return sorted(runs, key=lambda p: (_created_at(p), p.name))


def _created_at(path: Path) -> float:
    try:
        return float(json.loads((path / RUN_FILE).read_text(encoding="utf-8"))["created_at"])
    except (OSError, ValueError, KeyError):
        return 0.0


def resolve_runs(out_dir: Path, ref: str) -> list[Path]:
    """A run folder path, a run id, or a label (all runs with that label, oldest first)."""
    direct = Path(ref)
    if (direct / RUN_FILE).is_file():
        return [direct]
    candidates = list_runs(out_dir)
    by_id = [p for p in candidates if p.name == ref]
    if by_id:
        return by_id
    by_label = []
    for p in candidates:
        try:
            label = json.loads((p / RUN_FILE).read_text(encoding="utf-8")).get("label")
        except (OSError, ValueError):
            continue
        if label == ref:
            by_label.append(p)
    if by_label:
        return by_label
    raise StoreError(
        f"{ref!r}: no run folder, run id or label of that name under {out_dir} "
        "(see `breakpoint history --out DIR`)"
    )


def iter_stored(paths: Iterable[Path]) -> list[StoredRun]:
    return [load_run(p) for p in paths]
