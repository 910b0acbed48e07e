"""End to end: the harness's guardrails (docs/design.md#harness) against targets on 127.0.0.1.

A target that dies or hangs mid-run, a scenario whose every request fails, a scenario calling a
third-party host, and a scenario sending credentials. Each run is `python -m breakpoint run` in a
child process (so a target can be killed or stalled under it), with small plans and no emulation.
(SIGKILL and SIGTERM of the runner itself are in tests/test_run_e2e.py.)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from breakpoint.cli.main import main
from breakpoint.demo.target import TargetProcess
from breakpoint.load.settings import DRAIN_MARGIN_S
from breakpoint.runs.store import load_run

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
SHOP = ROOT / "scenarios" / "shop.py"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"

# A loopback segment with a short timeout, so the hang detector's bound,
# max(--hang-s, 2 x timeout_s), can be short: 8 s.
QUICK_TIMEOUT_S = 4
QUICK_TIMEOUT_PROFILE = """\
name = "loopback"
share = 1
[network]
rtt_ms = 0
down_kbps = 1000000
up_kbps = 1000000
timeout_s = 4
[device]
cpu_slowdown = 1
[slo]
p95_ms = 500
"""
HANG_S = 8.0


@dataclass
class Finished:
    """A run that ended: its exit code, output and run folder."""

    code: int
    out: str
    err: str
    run_dir: Path

    @property
    def info(self) -> dict[str, object]:
        info: dict[str, object] = json.loads((self.run_dir / "run.json").read_text())
        return info

    @property
    def summary(self) -> dict[str, object]:
        summary: dict[str, object] = json.loads((self.run_dir / "summary.json").read_text())
        return summary


class Run:
    """`breakpoint run` in a child process, watched through its run folder."""

    def __init__(
        self,
        scenario: Path,
        host: str,
        out: Path,
        *options: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.out = out
        argv = [
            sys.executable, "-m", "breakpoint", "run", str(scenario),
            "--host", host,
            "--no-emulation",
            "--out", str(out),
            *options,
        ]  # fmt: skip
        if not any(o.startswith("--baseline") for o in options):
            argv += ["--baseline-rps", "20"]
        if "--profiles" not in options:
            argv += ["--profiles", "desktop-broadband"]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    def run_dir(self) -> Path | None:
        runs = [p for p in self.out.iterdir() if p.is_dir()] if self.out.exists() else []
        return runs[0] if runs else None

    def final_steps(self) -> set[int]:
        """Steps whose final record is on disk."""
        run_dir = self.run_dir()
        path = run_dir / "steps.jsonl" if run_dir else None
        if path is None or not path.exists():
            return set()
        steps = set()
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a record being written
            if rec.get("final"):
                steps.add(int(rec["step"]))
        return steps

    def wait_for(self, condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                raise AssertionError(f"the run ended before {what}:\n{out}\n{err}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout_s:g} s")
            time.sleep(0.2)

    def finish(self, timeout_s: float) -> Finished:
        """Wait for the run to end by itself (the test fails, and the run is killed, if not)."""
        try:
            out, err = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError(
                f"the run did not end by itself within {timeout_s:g} s:\n{out[-2000:]}"
            ) from None
        run_dir = self.run_dir()
        assert run_dir is not None, (out, err)
        return Finished(self.proc.returncode, out, err, run_dir)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def _assert_ended_cleanly(run: Finished) -> None:
    """The CLI contract after a run that stopped early: exit 0, no traceback, run folder last."""
    assert run.code == 0, run.err
    assert "Traceback" not in run.out + run.err
    assert run.out.strip().splitlines()[-1] == str(run.run_dir)


def _assert_reportable(run: Finished) -> None:
    (run.run_dir / "report.html").unlink()
    assert main(["report", str(run.run_dir)]) == 0
    assert (run.run_dir / "report.html").stat().st_size > 0


def _partial_warning(summary: dict[str, object]) -> str:
    warnings = summary["warnings"]
    assert isinstance(warnings, list)
    return " ".join(w["message"] for w in warnings if w["kind"] == "partial_run")


# -- a target that dies ------------------------------------------------------------------------
def test_killed_target_aborts_the_run_and_keeps_its_steps(
    own_target: TargetProcess, tmp_path: Path
) -> None:
    """A target killed after step 1 aborts the ramp on errors; step 1 stays on disk, reportable."""
    run = Run(
        SHOP, own_target.url, tmp_path,
        # Scouting steps hold 5 s: a 1 s limit (+ 2 s settling) fires well within any step.
        "--max-multiplier", "4", "--warmup-s", "0.5", "--hold-s", "6", "--abort-for-s", "1",
    )  # fmt: skip
    try:
        run.wait_for(lambda: 0 in run.final_steps(), "first final step")
        own_target.process.kill()
        own_target.process.wait()
        done = run.finish(timeout_s=90)
    finally:
        run.kill()

    _assert_ended_cleanly(done)
    info = done.info
    assert info["status"] == "aborted"
    assert str(info["stop_reason"]).startswith("aborted: error rate"), info["stop_reason"]
    stored = load_run(done.run_dir)
    first = stored.steps[0].segments["desktop-broadband"]
    assert not stored.steps[0].partial and first.requests > 0 and not first.errors
    last = stored.steps[-1].segments["desktop-broadband"]
    assert last.errors.get("connection", 0) > 0, last.errors
    summary = done.summary
    assert summary["status"] == "aborted" and summary["stop_reason"] == info["stop_reason"]
    assert "error rate" in _partial_warning(summary)
    _assert_reportable(done)


def test_killed_target_is_reported_even_with_short_steps(
    own_target: TargetProcess, tmp_path: Path
) -> None:
    """A dead target under short steps aborts the ramp, or at least a warning says it is down."""
    run = Run(
        SHOP, own_target.url, tmp_path,
        "--max-multiplier", "4", "--warmup-s", "0.5", "--hold-s", "1.5", "--abort-for-s", "3",
        "--refine-levels", "1", "--refine-repeats", "1",
    )  # fmt: skip
    try:
        run.wait_for(lambda: 0 in run.final_steps(), "first final step")
        own_target.process.kill()
        own_target.process.wait()
        done = run.finish(timeout_s=120)
    finally:
        run.kill()

    assert "Traceback" not in done.out + done.err
    assert len(load_run(done.run_dir).steps) >= 2
    warnings = done.summary["warnings"]
    assert isinstance(warnings, list)
    said = " ".join([str(done.info["stop_reason"])] + [w["message"] for w in warnings])
    assert done.info["status"] == "aborted" or "connect" in said, said


# -- a target that hangs -----------------------------------------------------------------------
def test_hanging_target_is_detected_and_ends_the_run(
    own_target: TargetProcess, tmp_path: Path
) -> None:
    """A target that stops answering ends the run by itself, stop_reason 'not answering'."""
    profile = tmp_path / "loopback.toml"
    profile.write_text(QUICK_TIMEOUT_PROFILE)
    # The detector measures silence within one step, and only the first ramp step is held in
    # full (later ones are scouts of max(5 s, 40% of the hold)): the target hangs early in
    # step 1, which is longer than the detector's bound. A hang in a later step goes unnoticed
    # (see the harness report): no test waits minutes for that.
    hold_s = HANG_S + 10
    run = Run(
        SHOP, own_target.url, tmp_path / "reports",
        "--profiles", str(profile),
        "--max-multiplier", "3", "--warmup-s", "0.5", "--hold-s", str(hold_s),
        "--hang-s", str(HANG_S),
    )  # fmt: skip
    try:
        run.wait_for(lambda: own_target.stats()["requests_total"] >= 40, "40 requests served")
        own_target.stall(600_000)
        # A bound, not a measurement: the step, the detector's silence, the drain, and slack.
        done = run.finish(timeout_s=2 * (hold_s + HANG_S + QUICK_TIMEOUT_S + DRAIN_MARGIN_S))
    finally:
        run.kill()

    _assert_ended_cleanly(done)
    info = done.info
    assert info["status"] == "aborted"
    assert "not answering" in str(info["stop_reason"]), info["stop_reason"]
    stored = load_run(done.run_dir)
    assert len(stored.steps) == 1 and stored.steps[0].partial
    assert stored.steps[0].segments["loopback"].requests > 0  # what was measured is kept
    assert "not answering" in _partial_warning(done.summary)
    _assert_reportable(done)


# -- abort criteria ----------------------------------------------------------------------------
def test_error_rate_abort_stops_the_ramp(demo_target: TargetProcess, tmp_path: Path) -> None:
    """Every request failing (404) for --abort-for-s seconds stops the ramp: status 'aborted'."""
    run = Run(
        SCENARIOS / "not_found.py", demo_target.url, tmp_path,
        "--max-multiplier", "3", "--warmup-s", "0.5", "--hold-s", "6", "--abort-for-s", "3",
    )  # fmt: skip
    try:
        done = run.finish(timeout_s=90)
    finally:
        run.kill()

    _assert_ended_cleanly(done)
    info = done.info
    assert info["status"] == "aborted"
    assert str(info["stop_reason"]).startswith("aborted: error rate"), info["stop_reason"]
    stored = load_run(done.run_dir)
    assert len(stored.steps) == 1  # stopped within the first step
    seg = stored.steps[0].segments["desktop-broadband"]
    assert seg.errors.get("http_4xx", 0) == seg.requests > 0
    assert done.summary["stop_reason"] == info["stop_reason"]


# -- a third-party host --------------------------------------------------------------------------
@dataclass(frozen=True)
class ForeignRun:
    run: Finished
    foreign: str  # host:port of the third party
    connections: int  # connections the third party received


@pytest.fixture(scope="module")
def foreign_run(
    demo_target: TargetProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ForeignRun]:
    """One run of a scenario that calls a listener on 127.0.0.2 besides the target."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as foreign:
        foreign.bind(("127.0.0.2", 0))  # loopback, but not the target's host
        foreign.listen(64)
        port = foreign.getsockname()[1]
        run = Run(
            SCENARIOS / "foreign_host.py", demo_target.url, tmp_path_factory.mktemp("foreign"),
            "--max-multiplier", "2", "--warmup-s", "0.5", "--hold-s", "2",
            env={"BP_TEST_FOREIGN_URL": f"http://127.0.0.2:{port}/collect"},
        )  # fmt: skip
        try:
            done = run.finish(timeout_s=90)
        finally:
            run.kill()
        foreign.setblocking(False)
        connections = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                foreign.accept()[0].close()
                connections += 1
    yield ForeignRun(done, f"127.0.0.2:{port}", connections)


def test_foreign_host_is_blocked_counted_and_never_contacted(foreign_run: ForeignRun) -> None:
    """Requests to a host other than the target are counted, reported, and never sent."""
    done, host = foreign_run.run, foreign_run.foreign
    assert foreign_run.connections == 0
    assert done.code == 0, done.err[-2000:]
    assert done.out.strip().splitlines()[-1] == str(done.run_dir)
    info = done.info
    assert info["status"] == "complete"
    blocked = info["blocked_hosts"]
    assert isinstance(blocked, dict) and set(blocked) == {host} and blocked[host] > 0
    warnings = done.summary["warnings"]
    assert isinstance(warnings, list)
    messages = [w["message"] for w in warnings if w["kind"] == "blocked_hosts"]
    assert len(messages) == 1 and host in messages[0]
    # The target's own requests were measured as usual.
    assert all(s.segments["desktop-broadband"].requests > 0 for s in load_run(done.run_dir).steps)


def test_blocked_requests_do_not_flood_the_output(foreign_run: ForeignRun) -> None:
    """Blocked requests are reported once, as a count, not as a traceback per request."""
    done = foreign_run.run
    assert "Traceback" not in done.out + done.err


# -- credentials ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SecretRun:
    run: Finished
    token: str
    session: str
    api_key: str


@pytest.fixture(scope="module")
def secret_run(
    demo_target: TargetProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecretRun]:
    """One run of a scenario sending a bearer token, a session cookie and an API key."""
    values = {
        "BP_TEST_TOKEN": f"tok{secrets.token_hex(12)}",
        "BP_TEST_SESSION": f"sid{secrets.token_hex(12)}",
        "BP_TEST_API_KEY": f"key{secrets.token_hex(12)}",
    }
    run = Run(
        SCENARIOS / "secret_headers.py", demo_target.url, tmp_path_factory.mktemp("secrets"),
        "--max-multiplier", "2", "--warmup-s", "0.5", "--hold-s", "2",
        env=values,
    )  # fmt: skip
    try:
        done = run.finish(timeout_s=90)
    finally:
        run.kill()
    assert done.code == 0, done.err
    yield SecretRun(
        done, values["BP_TEST_TOKEN"], values["BP_TEST_SESSION"], values["BP_TEST_API_KEY"]
    )


def _files_containing(folder: Path, value: str) -> list[str]:
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and value.encode() in p.read_bytes()
    )


def test_headers_with_credentials_are_not_stored(secret_run: SecretRun) -> None:
    """Neither the bearer token nor the session cookie appears in any file of the run."""
    folder = secret_run.run.run_dir
    assert (folder / "report.html").is_file() and (folder / "steps.jsonl").is_file()
    for value in (secret_run.token, secret_run.session):
        assert _files_containing(folder.parent, value) == []
        assert value not in secret_run.run.out + secret_run.run.err


def test_credentials_in_the_query_string_are_not_stored(secret_run: SecretRun) -> None:
    """An API key passed as a URL query parameter appears in no file of the run."""
    folder = secret_run.run.run_dir
    assert _files_containing(folder.parent, secret_run.api_key) == []
