"""Writing a run folder while load is applied: `RunWriter` creates it and appends step records
durably, off the event loop (docs/design.md#quiet-event-loop), in one background OS thread that
works under gevent's monkey-patching. Reading runs back is runs/store.py.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gevent
from gevent import monkey
from gevent.event import Event

from breakpoint.errors import StoreError
from breakpoint.results import StepResult
from breakpoint.runs.store import (
    RUN_FILE,
    RUN_SCHEMA,
    STEPS_FILE,
    json_text,
    write_atomic,
    write_json,
)

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


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

    def append_line(self, name: str, record: Mapping[str, Any]) -> None:
        """Queue one JSON line for another file of the run folder (e.g. the scraped metrics),
        fsync'ed as it is written."""
        self._raise_failure()
        self._submit(self._write_line, name, json.dumps(record, separators=(",", ":")) + "\n")

    def update(self, **fields: Any) -> None:
        """Change fields of run.json (written after the steps queued before, failed or not)."""
        self.info.update(fields)
        self._submit(write_atomic, self.path / RUN_FILE, json_text(self.info))

    def put_file(self, name: str, text: str) -> None:
        """(Re)write a file of the run folder atomically, after the writes queued before."""
        self._submit(write_atomic, self.path / name, text)

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

    def _write_line(self, name: str, line: str) -> None:
        with open(self.path / name, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

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
        self._loop = gevent.get_hub().loop
        self._queue: Any = monkey.get_original("queue", "SimpleQueue")()
        self.failure: BaseException | None = None
        self.native_id: int | None = None  # the kernel's id of the thread, once it runs
        start_new_thread = monkey.get_original("_thread", "start_new_thread")
        self.ident: int = start_new_thread(self._run, ())

    def put(self, fn: Callable[..., None], *args: Any) -> None:
        self._queue.put((fn, args, None))

    def wait_idle(self) -> None:
        """Return once every call queued before has run (other greenlets run meanwhile)."""
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
        self.native_id = monkey.get_original("_thread", "get_native_id")()
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
