"""User mistakes get one clear line naming the file or option, exit code 2, and no traceback.

docs/design.md#harness: bad TOML, unknown profile, missing scenario, unreachable host ... are
refused
before any load is sent. Every case goes through `breakpoint.cli.main.main` as a user would type it.
The `run` cases point at a listening socket that never answers: after each case it is checked
that no byte of a request reached it.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from breakpoint.cli.main import main

GOOD_SCENARIO = """\
from locust import FastHttpUser, task


class Visitor(FastHttpUser):
    @task
    def page(self) -> None:
        self.client.get("/api/page")
"""

GOOD_PROFILE = """\
name = "kiosk"
share = 1
[network]
rtt_ms = 100
down_kbps = 1000
up_kbps = 500
[device]
cpu_slowdown = 2
[slo]
p95_ms = 1500
"""


@dataclass(frozen=True)
class Ctx:
    """What a case may use: a scratch folder and a host that listens (but never answers)."""

    tmp: Path
    host: str
    closed_host: str

    def write(self, name: str, text: str) -> str:
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    def scenario(self, text: str = GOOD_SCENARIO, name: str = "scenario.py") -> str:
        return self.write(name, text)

    def profile(self, old: str = "", new: str = "", name: str = "kiosk.toml") -> str:
        assert old in GOOD_PROFILE
        return self.write(name, GOOD_PROFILE.replace(old, new, 1) if old else GOOD_PROFILE)

    def run(self, *extra: str, scenario: str | None = None, host: str | None = None) -> list[str]:
        """A valid `run` command line (tiny plan, one built-in profile) plus `extra`."""
        argv = [
            "run",
            scenario if scenario is not None else self.scenario(),
            "--host",
            host if host is not None else self.host,
            "--out",
            str(self.tmp / "reports"),
            "--hold-s",
            "1",
            "--warmup-s",
            "0",
            "--max-multiplier",
            "2",
            "--no-emulation",
        ]
        if not any(a.startswith("--baseline") for a in extra):
            argv += ["--baseline-rps", "5"]
        if "--profiles" not in extra:
            argv += ["--profiles", "desktop-broadband"]
        return argv + list(extra)

    def surge(self, *extra: str) -> list[str]:
        """A valid `surge` command line (one built-in profile, no emulation) plus `extra`."""
        argv = ["surge", self.scenario(), "--host", self.host, "--out", str(self.tmp / "reports")]
        argv += ["--profiles", "desktop-broadband", "--no-emulation", "--baseline-rps", "5"]
        for option, value in (("--to", "3"), ("--for-s", "5")):
            if option not in extra:
                argv += [option, value]
        return argv + list(extra)

    def fake_run(self, info: dict[str, object]) -> str:
        folder = self.tmp / "reports" / "20250101-000000-old-abcdef"
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps(info), encoding="utf-8")
        return str(folder)


Argv = Callable[[Ctx], list[str]]


def _case(argv: Argv, *names: str, click_usage: bool = False, id: str) -> object:
    """One malformed input: its command line, what the error must name, and who reports it."""
    return pytest.param(argv, names, click_usage, id=id)


CASES = [
    # -- profiles -----------------------------------------------------------------------------
    _case(
        lambda c: c.run("--profiles", c.write("broken.toml", 'name = "x\nshare = 1\n')),
        "broken.toml",
        "TOML",
        id="profile-bad-toml",
    ),
    _case(
        lambda c: c.run("--profiles", "no-such-profile"), "no-such-profile", id="unknown-profile"
    ),
    _case(
        lambda c: c.run("--profiles", c.profile("rtt_ms = 100", "rtt_ms = -5")),
        "kiosk.toml",
        "rtt_ms",
        id="profile-negative-rtt",
    ),
    _case(
        lambda c: c.run("--profiles", c.profile("down_kbps = 1000", "down_kbps = 0")),
        "kiosk.toml",
        "down_kbps",
        id="profile-zero-bandwidth",
    ),
    _case(
        lambda c: c.run("--profiles", c.profile("share = 1", "share = 0")),
        "kiosk.toml",
        "share",
        id="profile-zero-share",
    ),
    _case(
        lambda c: c.run("--profiles", c.profile("share = 1", "share = -2")),
        "kiosk.toml",
        "share",
        id="profile-negative-share",
    ),
    _case(
        lambda c: c.run("--profiles", c.profile("up_kbps = 500", "up_kbps = 500\nbogus_ms = 3")),
        "kiosk.toml",
        "bogus_ms",
        id="profile-unknown-field",
    ),
    _case(
        lambda c: c.run(
            "--profiles", c.profile('name = "kiosk"', 'name = "kiosk"\ncolour = "red"')
        ),
        "kiosk.toml",
        "colour",
        id="profile-unknown-top-field",
    ),
    _case(
        lambda c: c.run("--profiles", c.profile("p95_ms = 1500", "")),
        "kiosk.toml",
        "p95_ms",
        id="profile-missing-field",
    ),
    _case(
        lambda c: c.run("--profiles", str(c.tmp / "absent.toml")),
        "absent.toml",
        id="profile-file-missing",
    ),
    _case(
        lambda c: c.run("--profiles", "desktop-broadband,desktop-broadband"),
        "desktop-broadband",
        id="profile-given-twice",
    ),
    _case(lambda c: ["profiles", "show", "no-such-profile"], "no-such-profile", id="profiles-show"),
    # -- scenario -----------------------------------------------------------------------------
    _case(lambda c: c.run(scenario=str(c.tmp / "missing.py")), "missing.py", id="scenario-missing"),
    _case(
        lambda c: c.run(scenario=c.scenario(name="scenario.txt")),
        "scenario.txt",
        id="scenario-not-py",
    ),
    _case(
        lambda c: c.run(scenario=c.scenario("class Broken(:\n    pass\n")),
        "scenario.py",
        "line",
        id="scenario-syntax-error",
    ),
    _case(
        lambda c: c.run(scenario=c.scenario("import os\n\nVALUE = 1\n")),
        "scenario.py",
        "user class",
        id="scenario-no-user-class",
    ),
    _case(
        lambda c: c.run(scenario=c.scenario("raise RuntimeError('boom at import')\n")),
        "scenario.py",
        "boom at import",
        id="scenario-raises-on-import",
    ),
    # -- host ---------------------------------------------------------------------------------
    _case(lambda c: c.run(host="127.0.0.1:8089"), "--host", id="host-not-a-url"),
    _case(lambda c: c.run(host="ftp://127.0.0.1/"), "--host", id="host-bad-scheme"),
    _case(lambda c: c.run(host="http://127.0.0.1:99999"), "--host", id="host-bad-port"),
    _case(lambda c: c.run(host=c.closed_host), "--host", id="host-unreachable"),
    _case(
        lambda c: c.run("--metrics-url", "127.0.0.1:9100/metrics"),
        "--metrics-url",
        "127.0.0.1:9100/metrics",
        id="metrics-url-not-a-url",
    ),
    _case(
        lambda c: c.run("--metrics-url", "http://127.0.0.1:99999/metrics"),
        "--metrics-url",
        "invalid port",
        id="metrics-url-bad-port",
    ),
    # -- plan options -------------------------------------------------------------------------
    _case(
        lambda c: c.run("--baseline-rps", "5", "--baseline-users", "5"),
        "--baseline-rps",
        "--baseline-users",
        id="both-baselines",
    ),
    _case(
        lambda c: [a for a in c.run("--baseline-rps", "5") if a not in ("--baseline-rps", "5")],
        "--baseline-rps",
        id="no-baseline",
    ),
    _case(lambda c: c.run("--baseline-rps", "-3"), "--baseline-rps", id="negative-baseline-rps"),
    _case(
        lambda c: c.run("--baseline-users", "-3"), "--baseline-users", id="negative-baseline-users"
    ),
    _case(
        lambda c: c.run("--baseline-users", "2.5"),
        "--baseline-users",
        click_usage=True,
        id="fractional-baseline-users",
    ),
    _case(
        lambda c: c.run("--max-multiplier", "60"),
        "--max-multiplier",
        "--hard-cap",
        id="max-multiplier-above-cap",
    ),
    _case(lambda c: c.run("--hard-cap", "5000"), "--hard-cap", id="hard-cap-too-high"),
    _case(lambda c: c.run("--hold-s", "0"), "--hold-s", id="hold-zero"),
    _case(lambda c: c.run("--max-hold-s", "0"), "--max-hold-s", id="max-hold-zero"),
    _case(lambda c: c.run("--warmup-s", "-1"), "--warmup-s", id="warmup-negative"),
    _case(lambda c: c.run("--refine-repeats", "0"), "--refine-repeats", id="refine-repeats-zero"),
    _case(lambda c: c.run("--refine-levels", "9"), "--refine-levels", id="refine-levels-9"),
    _case(lambda c: c.run("--slo-p95-ms", "0"), "--slo-p95-ms", id="slo-zero"),
    _case(
        lambda c: c.run("--abort-error-rate", "0"),
        "--abort-error-rate",
        click_usage=True,
        id="abort-error-rate-zero",
    ),
    _case(lambda c: c.run("--repeat", "0"), "--repeat", click_usage=True, id="repeat-zero"),
    # -- distribution -------------------------------------------------------------------------
    _case(lambda c: c.run("--worker"), "--master-host", id="worker-without-master-host"),
    _case(lambda c: c.run("--master"), "--expect-workers", id="master-without-expect-workers"),
    _case(
        lambda c: c.run("--workers", "2", "--master", "--expect-workers", "1"),
        "--workers",
        "--master",
        id="workers-and-master",
    ),
    _case(
        lambda c: ["target", "--workers", "0"], "--workers", click_usage=True, id="target-workers-0"
    ),
    # -- store --------------------------------------------------------------------------------
    _case(
        lambda c: c.run("--out", c.write("a-file", "not a folder")),
        "--out",
        "a-file",
        id="out-is-a-file",
    ),
    _case(
        lambda c: ["report", str(c.tmp)],
        "{tmp}",
        "not a run",
        id="report-not-a-run",
    ),
    _case(
        lambda c: ["report", c.fake_run({"schema": 99, "run_id": "x", "label": "old"})],
        "run.json",
        "schema",
        id="report-unknown-schema",
    ),
    _case(lambda c: ["report", str(c.tmp / "nowhere")], "nowhere", id="report-missing-folder"),
    _case(
        lambda c: ["report", str(Path(c.fake_run({})).parent)],
        "reports",
        "not a run",
        id="report-of-the-reports-folder",
    ),
    _case(
        lambda c: ["compare", "no-such-label", "other-label", "--out", str(c.tmp)],
        "no-such-label",
        id="compare-unknown-label",
    ),
    _case(lambda c: ["no-such-command"], "no-such-command", click_usage=True, id="unknown-command"),
    _case(lambda c: ["run"], "SCENARIO", click_usage=True, id="run-without-scenario"),
    # -- surge ----------------------------------------------------------------------------------
    _case(lambda c: c.surge("--to", "1"), "--to", "above 1", id="surge-to-one"),
    _case(lambda c: c.surge("--to", "0.5"), "--to", "above 1", id="surge-to-below-one"),
    _case(lambda c: c.surge("--for-s", "0"), "--for-s", "more than 0", id="surge-for-zero"),
    _case(lambda c: c.surge("--for-s", "-3"), "--for-s", "more than 0", id="surge-for-negative"),
    _case(lambda c: c.surge("--to", "80"), "--to 80", "--hard-cap", id="surge-above-cap"),
    _case(
        lambda c: c.surge("--recovery-timeout-s", "3"),
        "--recovery-timeout-s",
        id="surge-recovery-timeout-too-short",
    ),
    _case(
        lambda c: ["surge", c.scenario(), "--host", c.host, "--baseline-rps", "5", "--to", "3"],
        "--for-s",
        "missing",
        id="surge-without-for-s",
    ),
    _case(lambda c: ["surge"], "SCENARIO", click_usage=True, id="surge-without-scenario"),
]


@pytest.fixture(scope="module")
def silent_host() -> Iterator[socket.socket]:
    """A socket on 127.0.0.1 that listens but never answers: the kernel completes a connect."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield server


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _bytes_received(server: socket.socket) -> bytes:
    """Accept every pending connection and return whatever the clients sent."""
    received = b""
    server.setblocking(False)
    try:
        while True:
            try:
                conn, _ = server.accept()
            except BlockingIOError:
                return received
            with conn:
                conn.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    received += conn.recv(65536)
    finally:
        server.setblocking(True)


@pytest.mark.parametrize(("argv", "names", "click_usage"), CASES)
def test_bad_input_is_one_line_naming_it_with_exit_2(
    argv: Argv,
    names: tuple[str, ...],
    click_usage: bool,
    tmp_path: Path,
    silent_host: socket.socket,
    closed_port: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A malformed input exits 2 with one error line naming the file or option; no load sent."""
    port = silent_host.getsockname()[1]
    ctx = Ctx(tmp_path, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{closed_port}")
    args = argv(ctx)
    _bytes_received(silent_host)  # nothing from earlier cases counts

    code = main(args)

    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    if click_usage:
        # click's own usage errors: "Usage: ...", "Try ...", "Error: ..." naming the option.
        error_lines = [line for line in lines if line.startswith("Error:")]
        assert len(error_lines) == 1, err
        message = error_lines[0]
    else:
        assert len(lines) == 1, err
        message = lines[0]
        assert message.startswith("breakpoint: error: "), message
    for name in names:
        expected = name.format(tmp=tmp_path)
        assert expected in message, f"{expected!r} not named in: {message}"
    # Preflight may open one TCP connection to the target; no request is ever written to it.
    assert _bytes_received(silent_host) == b""


def _run_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("import json\n\n\nclass Broken(:\n    pass\n", id="syntax-error"),
        pytest.param('import json\n\n\nCONFIG = json.loads("{")\n', id="error-in-a-library"),
    ],
)
def test_scenario_import_errors_give_the_scenarios_line(
    source: str,
    tmp_path: Path,
    silent_host: socket.socket,
    closed_port: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A scenario that fails to import is reported at its own failing line (line 4 here)."""
    port = silent_host.getsockname()[1]
    ctx = Ctx(tmp_path, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{closed_port}")
    message = _run_error(ctx.run(scenario=ctx.scenario(source)), capsys)
    assert "scenario.py" in message and "at line 4:" in message, message


def test_a_bad_metrics_url_in_breakpoint_toml_names_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`metrics-url` in breakpoint.toml is checked like the flag: one line, exit 2."""
    monkeypatch.chdir(tmp_path)
    scenario = tmp_path / "scenario.py"
    scenario.write_text(GOOD_SCENARIO)
    (tmp_path / "breakpoint.toml").write_text(
        'baseline-rps = 5\nhost = "http://127.0.0.1:9"\nmetrics-url = ["ftp://x/metrics"]\n'
    )
    message = _run_error(["run", str(scenario), "--out", str(tmp_path / "r")], capsys)
    assert message.startswith("breakpoint: error: --metrics-url: 'ftp://x/metrics'"), message
