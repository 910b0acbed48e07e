"""The run writer: records leave the event loop, stay in order, and are on disk when it counts."""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import gevent
import pytest
from gevent import monkey

from breakpoint.load.writer import RunWriter
from breakpoint.results import SegmentStep, StepResult
from breakpoint.runs import store
from breakpoint.runs.store import RUN_FILE, STEPS_FILE, load_run

# Locust (imported by conftest) has patched time.sleep into a greenlet sleep: a slow disk is a
# native thread blocked for real.
native_sleep: Callable[[float], None] = monkey.get_original("time", "sleep")
native_ident: Callable[[], int] = monkey.get_original("_thread", "get_ident")


def _step(index: int, segments: tuple[str, ...] = ("a", "b")) -> StepResult:
    return StepResult(
        index=index,
        multiplier=1.0 + index,
        load=10.0 * (1 + index),
        phase="ramp",
        started_at=1000.0 + 30 * index,
        warmup_s=5.0,
        measured_s=20.0,
        segments={
            name: SegmentStep(
                segment=name,
                requests=100 + index,
                errors={},
                offered_rps=5.0,
                completed_rps=5.0,
                p50_ms=10.0,
                p90_ms=20.0,
                p95_ms=25.0,
                p99_ms=40.0,
                max_ms=50.0,
                mean_ms=12.0,
            )
            for name in segments
        },
    )


def _lines(writer: RunWriter) -> list[dict[str, object]]:
    text = (writer.path / STEPS_FILE).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


class SlowDisk:
    """os.fsync that blocks its thread for a while first, and remembers who called it."""

    def __init__(self, delay: Callable[[], float]) -> None:
        self.delay = delay
        self.calls: list[tuple[int, int]] = []  # (thread ident, file descriptor)
        self._real = os.fsync

    def __call__(self, fd: int) -> None:
        native_sleep(self.delay())
        self.calls.append((native_ident(), fd))
        self._real(fd)


def test_records_keep_their_order_and_are_all_on_disk_after_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes of uneven length (a disk that sometimes stalls) land in the order they were asked,
    run.json's last update comes after every step, and close() returns only when all is on disk.
    """
    writer = RunWriter(tmp_path, "order", {"model": "open"})
    rng = random.Random(3)
    monkeypatch.setattr(store.os, "fsync", SlowDisk(lambda: rng.choice((0.0, 0.0, 0.02))))
    asked = []
    for index in range(12):
        writer.append(_step(index), final=False)
        asked.append((index, False))
        if index % 3 == 2:  # finals arrive late, out of step order, as drains finish
            for late in (index - 1, index - 2, index):
                writer.append(_step(late), final=True)
                asked.append((late, True))
    writer.update(status="complete", steps=12)
    writer.close()

    written = [(rec["step"], rec["final"]) for rec in _lines(writer)]
    assert written == [pair for pair in asked for _ in ("a", "b")]  # one record per segment
    info = json.loads((writer.path / RUN_FILE).read_text(encoding="utf-8"))
    assert info["status"] == "complete" and info["steps"] == 12
    stored = load_run(writer.path)
    assert [s.index for s in stored.steps] == list(range(12))


def test_append_returns_at_once_and_greenlets_run_while_the_disk_is_slow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step's record costs the event loop nothing while the disk takes 300 ms to fsync it:
    the fsync happens in another OS thread, a ticking greenlet keeps ticking meanwhile, and
    flush() waits for it without stopping the loop."""
    writer = RunWriter(tmp_path, "slow", {})
    disk = SlowDisk(lambda: 0.3)
    monkeypatch.setattr(store.os, "fsync", disk)
    ticks: list[float] = []

    def tick() -> None:
        while True:
            gevent.sleep(0.01)
            ticks.append(time.perf_counter())

    ticker = gevent.spawn(tick)
    gevent.sleep(0.05)
    try:
        began = time.perf_counter()
        writer.append(_step(0), final=False)
        assert time.perf_counter() - began < 0.05, "append waited for the disk"
        writer.flush()
        flushed = time.perf_counter()
    finally:
        ticker.kill()
    assert flushed - began >= 0.3
    during = [t for t in ticks if began <= t <= flushed]
    assert len(during) >= 10, "the event loop stood still while the record was written"
    assert max(b - a for a, b in itertools.pairwise(during)) < 0.15
    assert [ident for ident, _ in disk.calls] == [writer._writer.ident]
    assert writer._writer.ident != native_ident()
    assert [rec["step"] for rec in _lines(writer)] == [0, 0]  # on disk once flushed
    writer.close()


def test_every_step_is_fsynced_as_it_is_written_so_a_killed_run_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Durability is per step, not per run: each append is fsync'ed on its own (a run killed
    midway keeps every step written), and flush() makes them readable without closing."""
    writer = RunWriter(tmp_path, "durable", {})
    disk = SlowDisk(lambda: 0.0)
    monkeypatch.setattr(store.os, "fsync", disk)
    for index in range(5):
        writer.append(_step(index), final=True)
    writer.flush()
    steps_fd = writer._steps.fileno()
    assert [fd for _, fd in disk.calls] == [steps_fd] * 5
    assert [s.index for s in load_run(writer.path).steps] == [0, 1, 2, 3, 4]
    assert load_run(writer.path).info["status"] == "running"  # nobody said otherwise yet
    writer.close()


def test_a_failed_write_is_raised_once_by_the_next_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up while a record is written in the background: the next append raises
    the OSError (as the write itself did before), later writes are still attempted, and run.json
    still gets the run's end."""
    writer = RunWriter(tmp_path, "full", {})
    real = os.fsync
    failures = [OSError(28, "No space left on device")]

    def fsync(fd: int) -> None:
        if failures:
            raise failures.pop()
        real(fd)

    monkeypatch.setattr(store.os, "fsync", fsync)
    writer.append(_step(0), final=False)
    writer._writer.wait_idle()
    with pytest.raises(OSError, match="No space left"):
        writer.append(_step(0), final=True)
    writer.append(_step(1), final=True)  # raised once: the run goes on to fail cleanly
    writer.update(status="failed")
    writer.close()
    assert [s.index for s in load_run(writer.path).steps] == [0, 1]
    assert load_run(writer.path).info["status"] == "failed"
    with pytest.raises(store.StoreError, match="closed"):
        writer.append(_step(2), final=True)


def test_the_writer_thread_ends_with_close(tmp_path: Path) -> None:
    """close() stops the background thread: runs in one process do not pile up threads.
    The writer's own OS thread is watched (other tests' threads may end meanwhile)."""
    writer = RunWriter(tmp_path, "threads", {})
    writer.append(_step(0), final=True)
    writer.flush()
    native = writer._writer.native_id
    assert native is not None and _os_thread_alive(native)
    writer.close()
    writer.close()  # twice is harmless
    deadline = time.monotonic() + 2
    while _os_thread_alive(native) and time.monotonic() < deadline:
        gevent.sleep(0.01)
    assert not _os_thread_alive(native)


def _os_thread_alive(native_id: int) -> bool:
    """The thread as the kernel sees it (gevent's threading lists greenlets)."""
    return os.path.exists(f"/proc/{os.getpid()}/task/{native_id}")
