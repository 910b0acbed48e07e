"""End to end across real network stacks: the target, the master and two workers each in a network
namespace of their own, joined by veth pairs to a bridge (tests/netns.py), the master bound to
its namespace's address. The merged result of the distributed run must equal a single-process
run of the same plan against the same target, within noise. Root only: skipped, saying why,
where namespaces cannot be created; the namespaces are deleted whatever happens.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from netns import lab, why_not_available

from breakpoint.runs.store import load_run

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
SHOP = ROOT / "scenarios" / "shop.py"
WHY_NOT = why_not_available()
TARGET_PORT = 8080


def _wait_listening(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if "listening on" in line:
            return
    raise AssertionError(f"the target did not start (exit {proc.wait()})")


def _finish(proc: subprocess.Popen[str], timeout_s: float) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"did not end within {timeout_s:g} s:\n{out[-3000:]}") from None
    return proc.returncode, out


@pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")
def test_master_and_workers_on_their_own_network_stacks_measure_what_one_process_does(
    tmp_path: Path,
) -> None:
    procs: list[subprocess.Popen[str]] = []

    def start(argv: list[str]) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(proc)
        return proc

    with lab("target", "master", "workers") as net:
        try:
            target_ip, master_ip = net.address["target"], net.address["master"]
            target = start(net.argv("target", [
                sys.executable, "-m", "breakpoint.demo.target", "--host", target_ip,
                "--port", str(TARGET_PORT), "--workers", "8", "--service-ms", "10", "--seed", "3",
            ]))  # fmt: skip
            _wait_listening(target)
            plan = [
                sys.executable, "-m", "breakpoint", "run", str(SHOP),
                "--host", f"http://{target_ip}:{TARGET_PORT}", "--baseline-rps", "40",
                "--profiles", "desktop-broadband", "--no-emulation", "--max-multiplier", "2",
                "--warmup-s", "1", "--hold-s", "5", "--seed", "5",
            ]  # fmt: skip
            master = start(net.argv("master", [
                *plan, "--master", "--master-bind", master_ip, "--expect-workers", "2",
                "--out", str(tmp_path / "distributed"),
            ]))  # fmt: skip
            joining = [*plan, "--worker", "--master-host", master_ip, "--out", str(tmp_path / "w")]
            workers = [start(net.argv("workers", joining)) for _ in range(2)]
            code, out = _finish(master, 180)
            assert code == 0, out
            for worker in workers:
                assert _finish(worker, 30)[0] == 0  # they quit when the master says so
            single_code, single_out = _finish(
                start(net.argv("master", [*plan, "--out", str(tmp_path / "single")])), 180
            )
            assert single_code == 0, single_out
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()

    (distributed_dir,) = (tmp_path / "distributed").glob("*/summary.json")
    (single_dir,) = (tmp_path / "single").glob("*/summary.json")
    distributed, single = load_run(distributed_dir.parent), load_run(single_dir.parent)
    assert [s.multiplier for s in distributed.steps] == [s.multiplier for s in single.steps]
    for d, s in zip(distributed.steps, single.steps, strict=True):
        assert d.generator.workers == 2 and not d.generator.bound, d.generator.reasons
        a, b = d.segments["desktop-broadband"], s.segments["desktop-broadband"]
        assert a.errors == {} and b.errors == {}
        # Same offered load: Poisson counts within 25%; same target, so the same latency
        # within 30% (or 5 ms) at the median and 50% (or 10 ms) at p95.
        assert abs(a.requests - b.requests) <= 0.25 * b.requests, (a.requests, b.requests)
        assert abs(a.offered_rps - b.offered_rps) <= 0.25 * b.offered_rps
        assert a.p50_ms is not None and b.p50_ms is not None
        assert abs(a.p50_ms - b.p50_ms) <= max(5.0, 0.3 * b.p50_ms), (a.p50_ms, b.p50_ms)
        assert a.p95_ms is not None and b.p95_ms is not None
        assert abs(a.p95_ms - b.p95_ms) <= max(10.0, 0.5 * b.p95_ms), (a.p95_ms, b.p95_ms)
