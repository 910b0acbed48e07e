"""Runs on disk: one folder per run under the reports folder.

A run folder holds `run.json` (what was run: plan, profiles, scenario, target, versions, status),
`steps.jsonl` (one record per step per segment, appended and fsync'ed as each step closes, so a
run killed midway keeps every step it measured), and the outputs `summary.json`, `summary.md`,
`report.html`. A record may be written twice for a step: provisional when the step closes and
final once its in-flight requests drained; the last one wins when reading.

During a run, `RunWriter` encodes, writes and fsyncs in one background OS thread, in the order
the writes were asked for: the event loop that times requests never waits for the disk.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
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
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


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


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    _write_atomic(path, _json_text(data))


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, set | tuple):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class RunWriter:
    """Creates a run folder and appends step records to it, durably, off the event loop.

    A step closes while requests of that step (slow clients) and of the next one are in flight,
    each timed on the event loop: encoding a step's records, writing and fsync'ing them there
    would add to their latencies (milliseconds, far more on a busy disk). So `append` and
    `update` only put the work in an unbounded queue read by one background OS thread (a real
    thread even where gevent has patched `threading`), which does it in the order asked and
    fsyncs each step as it writes it: a run killed midway keeps every step written so far.
    `flush()` waits (letting other greenlets run) until everything asked so far is on disk, and
    `close()` flushes first: a run that ends has every record on disk. A write that failed is
    raised once, by the next `append`, `flush` or `close`.
    """

    def __init__(self, out_dir: Path, label: str, info: Mapping[str, Any]) -> None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{out_dir}: cannot create the reports folder: {exc.strerror}"
            ) from None
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
        safe_label = _SAFE.sub("-", label).strip("-")[:40] or "run"
        self.run_id = f"{stamp}-{safe_label}-{secrets.token_hex(3)}"
        self.path = out_dir / self.run_id
        try:
            self.path.mkdir()
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the run folder: {exc.strerror}") from None
        self.info: dict[str, Any] = {
            "schema": RUN_SCHEMA,
            "run_id": self.run_id,
            "label": label,
            "created_at": time.time(),
            "status": "running",
            **info,
        }
        write_json(self.path / RUN_FILE, self.info)  # before any load: here and now
        self._steps = open(self.path / STEPS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self._reported = False
        self._closed = False
        self._writer = _WriterThread()

    def append(self, step: StepResult, *, final: bool) -> None:
        """Queue the step's records (one per segment), fsync'ed as they are written."""
        self._raise_failure()
        self._submit(self._write_step, step, final)

    def update(self, **fields: Any) -> None:
        """Change fields of run.json (written after the steps queued before, failed or not)."""
        self.info.update(fields)
        self._submit(_write_atomic, self.path / RUN_FILE, _json_text(self.info))

    def flush(self) -> None:
        """Wait until every write asked so far is on disk."""
        self._writer.wait_idle()
        self._raise_failure()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            self._writer.stop()
            self._steps.close()

    def _submit(self, write: Callable[..., None], *args: Any) -> None:
        if self._closed:
            raise StoreError(f"{self.path}: the run writer is closed")
        self._writer.put(write, *args)

    def _write_step(self, step: StepResult, final: bool) -> None:
        lines = "".join(
            json.dumps({**rec, "final": final}, separators=(",", ":")) + "\n"
            for rec in step.records()
        )
        self._steps.write(lines)
        self._steps.flush()
        os.fsync(self._steps.fileno())

    def _raise_failure(self) -> None:
        failure = self._writer.failure
        if failure is not None and not self._reported:
            self._reported = True
            raise failure


class _WriterThread:
    """One native OS thread running queued calls in order; `failure` is the first that raised.

    Locust imports gevent's monkey-patching, after which `threading.Thread` is a greenlet and
    `queue.SimpleQueue` a gevent queue: the originals are taken from gevent.monkey (the same
    objects when nothing was patched). Waiting for the thread goes through the event loop, so
    other greenlets keep running meanwhile.
    """

    def __init__(self) -> None:
        import gevent
        from gevent import monkey

        self._loop = gevent.get_hub().loop
        self._queue: Any = monkey.get_original("queue", "SimpleQueue")()
        self.failure: BaseException | None = None
        start_new_thread = monkey.get_original("_thread", "start_new_thread")
        self.ident: int = start_new_thread(self._run, ())

    def put(self, fn: Callable[..., None], *args: Any) -> None:
        self._queue.put((fn, args, None))

    def wait_idle(self) -> None:
        """Return once every call queued before has run (other greenlets run meanwhile)."""
        from gevent.event import Event

        done = Event()
        # An async watcher is the loop's thread-safe wake-up (what gevent's thread pool uses);
        # started, it also keeps the loop alive while this greenlet waits.
        wake = self._loop.async_()
        wake.start(done.set)
        try:
            self._queue.put((None, (), wake))
            done.wait()
        finally:
            wake.stop()
            wake.close()

    def stop(self) -> None:
        """The thread ends after the calls queued before."""
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args, wake = item
            if fn is not None:
                try:
                    fn(*args)
                except BaseException as exc:  # raised on the loop by RunWriter's next call
                    if self.failure is None:
                        self.failure = exc
            if wake is not None:
                wake.send()


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
