"""End to end: a distributed run (`--workers 2`: a master and two worker processes) keeps the
guarantees of a single process (docs/design.md#distributed-runs): the abort limits and the hang
detector on the workers' summed per-second counts, the cool-down after a step the target could
not keep up with, and a clean stop (exit 1, every step kept) when every worker is gone.
The single-process versions of these tests are in tests/test_harness_e2e.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest
from test_harness_e2e import SCENARIOS, SHOP, Run

from breakpoint.analysis.criteria import cool_down_note
from breakpoint.demo.target import TargetProcess
from breakpoint.runs.store import load_run

pytestmark = pytest.mark.e2e
TWO_WORKERS = ("--workers", "2")


def test_error_rate_abort_works_with_two_workers(
    demo_target: TargetProcess, tmp_path: Path
) -> None:
    """Every request failing (404) on both workers stops the ramp within the first step."""
    run = Run(
        SCENARIOS / "not_found.py", demo_target.url, tmp_path, *TWO_WORKERS,
        "--max-multiplier", "3", "--warmup-s", "0.5", "--hold-s", "8", "--abort-for-s", "2",
    )  # fmt: skip
    try:
        done = run.finish(timeout_s=90)
    finally:
        run.kill()

    assert done.code == 0 and "Traceback" not in done.out + done.err, done.err
    assert done.info["status"] == "aborted", done.out
    assert str(done.info["stop_reason"]).startswith("aborted: error rate")
    stored = load_run(done.run_dir)
    assert len(stored.steps) == 1 and stored.steps[0].partial
    seg = stored.steps[0].segments["desktop-broadband"]
    assert seg.errors.get("http_4xx", 0) == seg.requests > 0
    assert stored.steps[0].generator.workers == 2


def test_hanging_target_is_detected_with_two_workers(
    own_target: TargetProcess, tmp_path: Path
) -> None:
    """A target that stops answering ends a distributed run by itself ('not answering')."""
    hang_s = 3
    run = Run(
        SHOP, own_target.url, tmp_path, *TWO_WORKERS,
        "--max-multiplier", "3", "--warmup-s", "0.5", "--hold-s", "30", "--hang-s", str(hang_s),
    )  # fmt: skip
    try:
        run.wait_for(lambda: own_target.stats()["requests_total"] >= 100, "100 requests served")
        own_target.stall(600_000)
        done = run.finish(timeout_s=90)
    finally:
        run.kill()

    assert done.code == 0 and "Traceback" not in done.out + done.err, done.err
    assert done.info["status"] == "aborted", done.out
    assert "not answering" in str(done.info["stop_reason"]), done.info["stop_reason"]
    stored = load_run(done.run_dir)
    assert len(stored.steps) == 1 and stored.steps[0].partial  # stopped within step 1
    assert stored.steps[0].segments["desktop-broadband"].requests > 0  # measured, kept


def test_cool_down_then_losing_every_worker_with_two_workers(
    own_target: TargetProcess, tmp_path: Path
) -> None:
    """A step that leaves a queue behind pauses both workers' arrivals until it drains (as one
    process does); then, with every worker killed, the master stops by itself: exit 1, a clear
    message, every step measured before kept.

    The queue is made by stalling the target across the end of step 2 (shorter than the hang
    bound): its requests are still in flight at the close, far more than Little's law expects.
    """
    run = Run(
        SHOP, own_target.url, tmp_path, *TWO_WORKERS,
        "--max-multiplier", "2", "--warmup-s", "0.5", "--hold-s", "6",
        "--refine-levels", "1", "--refine-repeats", "1",
    )  # fmt: skip
    try:
        run.wait_for(lambda: 0 in run.final_steps(), "step 1's final")
        time.sleep(3.0)  # into step 2 (1 s warm-up + 6 s measured)
        own_target.stall(6_000)
        # Step 2's final comes after its drain; a refinement step (1X-2X) then runs.
        run.wait_for(lambda: 1 in run.final_steps(), "step 2's final", timeout_s=60)
        for child in psutil.Process(run.proc.pid).children():
            if "_worker" in " ".join(child.cmdline()):
                child.kill()
        done = run.finish(timeout_s=60)
    finally:
        run.kill()

    assert cool_down_note(1) in done.out, done.out
    assert done.code == 1, done.out + done.err
    assert "Traceback" not in done.out + done.err
    assert "every worker was lost" in done.err, done.err
    assert done.info["status"] == "failed"
    assert len(load_run(done.run_dir).steps) >= 2
