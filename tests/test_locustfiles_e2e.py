"""End to end: ordinary locustfiles of the kinds Locust's documentation teaches run unchanged
against the embedded target on 127.0.0.1 (docs/design.md#locust-conventions), and a scenario
that keeps raising stops the run instead of becoming a verdict."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

import pytest

from breakpoint.cli.main import main
from breakpoint.demo.target import TargetProcess
from breakpoint.load.scenario import _LOADED
from breakpoint.runs.store import load_run

pytestmark = pytest.mark.e2e
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
QUICK = ["--warmup-s", "0.5", "--hold-s", "2", "--profiles", "desktop-broadband"]


def _run_dir(out: str) -> Path:
    return Path(out.strip().splitlines()[-1])


def test_plain_users_with_their_own_client_and_a_markov_taskset(
    demo_target: TargetProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`User` classes picked by name (-f FILE ClassA ClassB), measured from the request events
    their own client fires, host taken from the classes, a scenario option reaching
    parsed_options, settings from pyproject.toml with the command line winning, and a second
    HttpSession to another loopback address blocked and counted without a connection."""
    seen = tmp_path / "seen.txt"
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    other.bind(("127.0.0.2", 0))  # loopback, but not the target's address
    other.listen(16)
    other.setblocking(False)
    other_host = f"127.0.0.2:{other.getsockname()[1]}"
    monkeypatch.setenv("BP_TEST_OTHER_HOST", f"http://{other_host}")
    monkeypatch.setenv("BP_TEST_HOST", demo_target.url)
    monkeypatch.setenv("BP_TEST_SEEN", str(seen))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        "[tool.breakpoint]\n"
        "baseline-rps = 20\n"
        "max-multiplier = 2\n"
        'label = "from-pyproject"\n'
        f'out = "{tmp_path / "reports"}"\n'
    )
    path = SCENARIOS / "plain_users.py"
    # The unit tests may have imported this file already, with the default host (a file is
    # imported once per process): import it again under this test's environment.
    for key in [k for k in _LOADED if k[0] == str(path.resolve())]:
        del _LOADED[key]
    code = main(
        ["run", "-f", str(path), "RpcUser", "MarkovUser", "TwoHosts", "--scenario-opt",
         "shop-id=90817", "--label", "from-cli", *QUICK]
    )  # fmt: skip
    out, err = capsys.readouterr()
    with other:
        connections = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                other.accept()[0].close()
                connections += 1
    assert code == 0, err
    assert f"target: {demo_target.url}" in out
    assert "LoadTestShape Ramp" in out and "ignores it" in out
    run_dir = _run_dir(out)
    assert run_dir.parent == tmp_path / "reports"  # from pyproject.toml
    info = json.loads((run_dir / "run.json").read_text())
    assert info["label"] == "from-cli"  # the command line wins over the file
    assert info["status"] == "complete"
    assert info["not_emulated"] == ["MarkovUser", "RpcUser"]  # TwoHosts is an HttpUser
    # The second HttpSession's requests were blocked, counted, and never connected.
    assert connections == 0
    assert set(info["blocked_hosts"]) == {other_host} and info["blocked_hosts"][other_host] > 0
    assert info["scenario_errors"]["total"] == 0
    assert info["scenario"]["user_classes"] == ["RpcUser", "MarkovUser", "TwoHosts"]
    assert (
        info["scenario"]["options"] == ["shop-id"] and info["scenario"]["ignored_shape"] == "Ramp"
    )
    assert "90817" not in json.dumps(info["scenario"])  # option values are not stored
    # Both picked classes ran with the scenario's option; the unpicked one did not.
    lines = set(seen.read_text().splitlines())
    assert lines == {"RpcUser shop=90817", "MarkovUser shop=90817"}  # TwoHosts has its own on_start
    module = next(m for (p, _), (m, _) in _LOADED.items() if p == str(path.resolve()))
    assert module.FIRED["rpc"] > 0 and module.FIRED["markov"] > 0
    stored = load_run(run_dir)
    assert [s.multiplier for s in stored.steps][:2] == [1.0, 2.0]
    measured = sum(s.segments["desktop-broadband"].requests for s in stored.steps)
    assert measured > 0
    for step in stored.steps:
        # The desktop's device time (2 ms + 0.05 ms/KB at 1x) is spent on every response,
        # the plain users' included (HttpUser's responses also have network time).
        assert step.segments["desktop-broadband"].parts_ms["device"] >= 2.0
    summary = json.loads((run_dir / "summary.json").read_text())
    notes = [w["message"] for w in summary["warnings"] if w["kind"] == "not_emulated"]
    assert len(notes) == 1 and "MarkovUser" in notes[0]


def test_a_scenario_that_raises_stops_the_run_with_exit_1(
    demo_target: TargetProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Users raising in every task: a clear error naming the class, the exception and the
    scenario's line, exit 1, the run folder kept with why it stopped, no breaking point."""
    code = main(
        ["run", str(SCENARIOS / "raising.py"), "--host", demo_target.url,
         "--baseline-rps", "20", "--max-multiplier", "3", "--no-emulation", "--out", str(tmp_path),
         *QUICK]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1, err
    error = err.strip().splitlines()[-1]
    assert error.startswith("breakpoint: error: scenario failed")
    assert "Crasher raised AttributeError" in error and "raising.py:10" in error
    assert "Traceback" not in out + err
    run_dir = _run_dir(out)
    assert run_dir.parent == tmp_path and str(run_dir) in error
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "failed" and info["stop_reason"].startswith("scenario failed")
    assert info["scenario_errors"]["total"] >= 3
    assert info["scenario_errors"]["failed_steps"] == [0]
    assert (run_dir / "steps.jsonl").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == info["stop_reason"]
    assert summary["steps"] == []  # the failing step is not a measurement of the target
    for segment in summary["segments"]:
        assert segment["break"]["label"] not in ("bracketed", "extrapolated")
    assert os.path.isfile(run_dir / "report.html")


def test_a_scenario_that_raises_on_a_worker_stops_the_distributed_run(
    demo_target: TargetProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same failing scenario on a local worker process: the master stops the run, exit 1."""
    code = main(
        ["run", str(SCENARIOS / "raising.py"), "--host", demo_target.url, "--workers", "1",
         "--baseline-rps", "20", "--max-multiplier", "3", "--no-emulation", "--out", str(tmp_path),
         *QUICK]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1, err
    error = err.strip().splitlines()[-1]
    assert "Crasher raised AttributeError" in error and "raising.py:10" in error
    info = json.loads((_run_dir(out) / "run.json").read_text())
    assert info["status"] == "failed" and info["scenario_errors"]["total"] >= 3
