"""Benchmark of the breaking point's accuracy and the search's cost.

See docs/design.md#ground-truths and docs/design.md#performance-targets.

Run: `python benchmarks/accuracy.py [--seeds N] [--first-seed S] [--cases a,b,c] [--no-readme]`
(the default is 3 seeds of every case, about 50 minutes), or `--quick --cases KEY` for a smoke test
of one case with one seed and short steps (a few minutes; the README is left alone). Each run is
the real `breakpoint run` (a child process) against a fresh server on 127.0.0.1 whose breaking
point is known from queueing theory, errors < 1% and a p95 SLO of 250 ms of server time
(scaled with the service time in the 3g case):

- plain: the embedded target, 8 workers, exponential service of mean 20 ms, no emulation: an
  M/M/8 queue; 1X = 40 req/s; the truth is where Erlang C's p95 sojourn reaches the SLO (9.68X
  at exactly 20 ms).
- network: the same target seen through a profile with a 100 ms RTT, a 1 Gbit/s link and no
  device time, so every request gains a known, constant time (netmodel.predict on a kept-alive
  connection); the truth is where p95 sojourn + that time reaches the SLO (9.43X at 20 ms).
- errors: the same target with no waiting room (`max_queue=0`): an M/M/8/8 loss system that
  answers 503 to arrivals finding every worker busy; the truth is where Erlang B's blocking
  probability reaches the error SLO (3.91X at 20 ms). Its latency cannot break first: nobody
  waits (p95 sojourn about 60 ms). A waiting room would make a worse reference: with 8 places
  (M/M/8/16) the asyncio target refused about a tenth of Erlang's prediction for a raw Poisson
  client and twice it under Locust (/tmp probes, 2026-11-24): 1% blocking lives in the far tail
  of the occupancy, which depends on how arrivals and timer wake-ups interleave in the event
  loop. With no waiting room a raw client matched Erlang B within Poisson noise.
- 3g: two segments share one embedded M/M/4 target in one run: 20% of the arrivals are
  android-lowend-3g users under full emulation (400 ms RTT, 400/400 kbit/s, CPU 6x) fetching the
  200 KB asset, 80% are a fast segment (a profile with no RTT, a 100 Gbit/s link and no device
  time) fetching the same asset. Both fetch the asset because it is the target's only 200 KB
  response and it costs a quarter of /api/page's service (target.ASSET_COST): a mix of the two
  would be a hyperexponential service, not M/M/c, and the 3G requests' own service would differ
  from the queue's. The asset holds one of 4 workers for an exponential 40 ms (the target runs
  with 160 ms per unit cost), 1X = 10 req/s, so the break is near 93 req/s. On M/M/8 at 20 ms it
  would be at 385 req/s of 200 KB responses: the generator, reading every fast response through
  the emulator's small receive buffer (about 4 ms of CPU per fast request, 8 ms per emulated 3G
  one), was at 77% CPU at 160 req/s and generator-bound at 200 req/s on this 2-core machine
  (2026-11-30). Slowing M/M/8 down instead (80 ms) slows its queue down as much: at the break it
  needs about 40 s to settle (model.relaxation_s) where plain's and this M/M/4 need 6-10 s, so
  short steps would pass levels that fail. The worker is released before the response is
  written (target.py, TargetServer._serve then _respond), so the 4 s a 3G user takes to read its
  200 KB hold a connection, not a worker. The 3G users send `Connection: close`
  (benchmarks/accuracy_locustfile.py), so every one of their requests is a new connection and
  its emulated time is one constant: netmodel.predict on a new connection (a set-up RTT, the
  request RTT and upload, a slow-start round from the initial window, 200 KB at 400 kbit/s, and
  the device time), about 5087 ms. Each segment's SLO is that constant + a server budget: 400 ms
  for the 3G segment, 500 ms for the fast one (whose model time is about 0.02 ms). Truth per
  segment: the total arrival rate at which constant + Erlang C's p95 sojourn reaches its SLO
  (the p95 of a constant plus the sojourn is the constant plus the sojourn's p95): 9.20X and
  9.37X at exactly 40 ms. The fast segment's measured time also holds the real read of 200 KB
  on loopback, about 10 ms under load, which the model does not count; against a 500 ms budget
  that moves its break by about 0.1%. (A budget near the p95 an idle queue takes, 3 service
  times, would make a truth sensitive to the generator's own lag.)
- gunicorn: a server nobody here wrote: gunicorn with 4 sync workers serving
  benchmarks/sleepy_wsgi.py, whose handler sleeps an exponential 20 ms (seeded per worker) and
  answers 5 bytes; no emulation; 1X = 20 req/s. A sync worker serves one connection at a time
  and closes it after the response, and connections wait in the kernel's accept queue
  (`--backlog 2048`, below net.core.somaxconn), so it is an M/M/4 queue; the truth is where
  Erlang C's p95 sojourn reaches 250 ms, with the time a worker was really held. That is not
  the access log's %(D)s: it starts after the request is parsed and stops before the access
  log line is written and the connection closed, and since gunicorn 24 the close lingers until
  the client's FIN (util.close_graceful). At saturation a worker was held 22.5 ms per request
  where %(D)s said 21.3 ms (/tmp probe, 2026-11-29); over a whole run 22.5 ms where %(D)s said
  20.8 ms, which would have put the truth at 8.97X instead of 8.25X (+9%). So
  benchmarks/sleepy_gunicorn.py runs gunicorn's SyncWorker with a timer around
  each connection (accept to close) and the truth uses that; %(D)s and the drawn sleeps are
  shown beside it. FastHttpUser opens a new connection per request (the server closes), which
  on loopback costs the client a fraction of a millisecond and the server nothing but the
  accept, inside the timed span. The held time is not exponential (an exponential sleep plus
  about 2.5 ms of work), which makes the queue wait a little less than M/M/4 says: the truth is
  slightly pessimistic.

Every truth uses the service time the server reports it actually held (held_service_ms_mean of
the embedded target; the worker timer's mean for gunicorn): timers wake late and each seed's
draws have their own mean. Printed per run and segment: estimate vs truth, error, label, how the
analysis placed the break (fit or interpolation: summary.json's `method`), interval and whether
it covers the truth, and the load-time (warm-up + hold of every step as planned) against a
linear ramp reaching the same resolution: steps of 5% of the lowest true break from 1X up to the
highest, each held like a full plan step (goal: at most 60%). Short steps flatter the ramp: a
scouting step is never held less than 5 s (search.SCOUT_MIN_HOLD_S), so with 5 s holds scouts
save nothing. The search's decisions depend on the results, not on the durations, so the same
steps are also costed with the plan's default steps (5 s warm-up + 20 s hold) against a ramp of
such steps. Then a side-by-side summary per case and segment, a line per case and the overall
coverage. The figures are also written to benchmarks/README.md under "## accuracy.py" (other
sections are left alone).

Step durations default to 5 s + 10 s (3 seeds x 5 cases take about 50 minutes: the search
lengthens the 3g case's steps for its 5 s requests, breakpoint/sizing.py), as the
ground-truth e2e test holds them: the break sits at 96-97% of capacity, where a queue needs about
6 s to settle (model.relaxation_s), so 3 s + 5 s steps pass levels that would fail in steady
state and bias the estimate high (about +4% on the M/M/8 case, 2026-11-24), while the analysis
flags them (`not_steady`) and widens the interval. `--quick` holds 3 s + 6 s steps: a smoke
test, not a measurement. The gunicorn case needs the `bench` extra (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from _readme import write_section

from breakpoint.analysis.search import SCOUT_FRACTION, SCOUT_MIN_HOLD_S
from breakpoint.demo.service import ASSET_COST
from breakpoint.demo.target import TargetConfig, TargetProcess, start_target_process
from breakpoint.load.emulate_parts import _head_bytes as emulated_head_bytes
from breakpoint.plan import netmodel
from breakpoint.plan.profiles import Profile, load_profile_file, resolve_profiles
from breakpoint.plan.steps import Plan, PlannedStep
from breakpoint.results import StepResult
from breakpoint.runs.store import load_run
from breakpoint.sim import queueing
from breakpoint.sim.simulate import linear_ramp_load_time_s

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
HEADING = "## accuracy.py"
SCENARIO = ROOT / "scenarios" / "ground_truth.py"
ONE_PATH_SCENARIO = HERE / "accuracy_locustfile.py"

WORKERS = 8
SERVICE_MS = 20.0
BASELINE_RPS = 40.0
SLO_P95_MS = 250.0
MAX_MULTIPLIER = 12.0
PROFILE = "desktop-broadband"  # error SLO 1%; its latency SLO is overridden by SLO_P95_MS
NETWORK_RTT_MS = 100.0
NETWORK_KBPS = 1_000_000.0  # 1 Gbit/s: the 2 KB page moves in 0.02 ms, the RTT is all
MAX_QUEUE = 0  # Erlang B: see the module docstring
# The 3g case: the embedded target's 200 KB asset costs ASSET_COST of the unit service time.
ASSET_PATH = "/static/asset.bin"
ASSET_WORKERS = 4
ASSET_SERVICE_MS = 40.0  # what the asset holds a worker for (see the module docstring)
ASSET_BASELINE_RPS = 10.0
SLOW_PROFILE = "android-lowend-3g"
SLOW_SHARE = 0.2
SLOW_BUDGET_MS = 400.0  # the 3G segment's SLO: its model time + this much server time
FAST_NAME = "loopback"
FAST_BUDGET_MS = 500.0
FAST_KBPS = 100_000_000.0  # the profile schema's highest bandwidth: 200 KB in 0.02 ms
# The gunicorn case.
GUNICORN_WORKERS = 4
GUNICORN_SERVICE_MS = 20.0
GUNICORN_BASELINE_RPS = 20.0
GUNICORN_BACKLOG = 2048
GUNICORN_PATH = "/work"
GUNICORN_LOG_FORMAT = "%(r)s %(s)s %(D)s %({x-drawn-us}o)s"
RESOLUTION = 0.05  # docs/design.md#performance-targets: locate each break to 5%
RAMP_GOAL = 0.60
RUN_TIMEOUT_S = 900.0
QUICK_WARMUP_S = 3.0
QUICK_HOLD_S = 6.0


@dataclass(frozen=True)
class Case:
    """One server configuration whose break is known."""

    key: str
    title: str
    kind: str = "embedded"  # "embedded" (one segment), "3g" (two segments), "gunicorn"
    max_queue: int | None = None
    rtt_ms: float | None = None  # None: --no-emulation (embedded cases)
    baseline_rps: float = BASELINE_RPS
    workers: int = WORKERS


CASES = {
    "plain": Case("plain", "M/M/8, 20 ms"),
    "network": Case("network", f"M/M/8 + {NETWORK_RTT_MS:g} ms RTT", rtt_ms=NETWORK_RTT_MS),
    "errors": Case("errors", f"M/M/8/{WORKERS + MAX_QUEUE} (503s)", max_queue=MAX_QUEUE),
    "3g": Case(
        "3g",
        f"M/M/{ASSET_WORKERS}, {ASSET_SERVICE_MS:g} ms, 3G 200 KB + fast",
        kind="3g",
        baseline_rps=ASSET_BASELINE_RPS,
        workers=ASSET_WORKERS,
    ),
    "gunicorn": Case(
        "gunicorn",
        f"gunicorn {GUNICORN_WORKERS} sync workers",
        kind="gunicorn",
        baseline_rps=GUNICORN_BASELINE_RPS,
        workers=GUNICORN_WORKERS,
    ),
}


@dataclass(frozen=True)
class Truth:
    """One segment's known break: the queue it sees and what the SLO leaves for the server."""

    segment: str
    workers: int
    held_ms: float  # mean service time per request the server really held
    added_ms: float  # the network model's constant time (0 without emulation)
    slo_p95_ms: float
    error_slo: float
    baseline_rps: float
    max_queue: int | None = None

    @property
    def multiplier(self) -> float:
        service_s = self.held_ms / 1000.0
        if self.max_queue is not None:
            rate = queueing.finite_blocking_break_rate(
                self.workers, self.max_queue, service_s, self.error_slo
            )
        else:
            rate = queueing.break_rate(
                self.workers, service_s, self.slo_p95_ms, added_ms=self.added_ms
            )
        return rate / self.baseline_rps

    def model_p95_ms(self, multiplier: float) -> float:
        """The p95 this segment should see at a load level (inf at or beyond capacity)."""
        rate = multiplier * self.baseline_rps
        service_s = self.held_ms / 1000.0
        if self.max_queue is not None:
            p95 = queueing.finite_sojourn_p95_s(self.workers, self.max_queue, service_s, rate)
        else:
            p95 = queueing.sojourn_p95_s(self.workers, service_s, rate)
        return self.added_ms + p95 * 1000.0


@dataclass(frozen=True)
class Outcome:
    """One segment of one search against one server, judged against its truth."""

    case: Case
    seed: int
    held_ms: float
    added_ms: float
    truth: float
    estimate: float | None
    low: float | None
    high: float | None
    label: str
    criterion: str | None
    steps: int
    load_s: float
    ramp_s: float
    wall_s: float
    run_dir: Path
    # The same steps costed with the plan's default step durations.
    default_load_s: float
    default_ramp_s: float
    warnings: tuple[str, ...] = ()  # the analysis' warning kinds (quality of the measurement)
    segment: str = ""
    slo_p95_ms: float = SLO_P95_MS
    method: str = ""  # how the analysis placed the break (summary.json's `method`)
    notes: tuple[str, ...] = ()  # server-side facts worth printing under the table

    @property
    def error(self) -> float | None:
        return None if self.estimate is None else self.estimate / self.truth - 1.0

    @property
    def covers(self) -> bool:
        return (
            self.low is not None and self.high is not None and self.low <= self.truth <= self.high
        )

    @property
    def ratio(self) -> float:
        return self.load_s / self.ramp_s

    @property
    def default_ratio(self) -> float:
        return self.default_load_s / self.default_ramp_s

    @property
    def placement(self) -> str:
        return placement(self.method)


def placement(method: str) -> str:
    """model.Break.method in a word or two: fit, interpolation, ..."""
    text = method.split(" (", 1)[0]
    if text.startswith("fit, cross-checked"):
        return "fit"
    if text.startswith("fit, clipped"):
        return "fit, clipped"
    if text.startswith("Poisson fit"):
        return "Poisson fit"
    if "interpolation" in text:
        return "interpolation"
    if text.startswith("middle of the bracket"):
        return "bracket middle"
    return text or "-"


# --- truths -------------------------------------------------------------------------------------


def _profile_toml(
    name: str,
    description: str,
    share: float,
    network: dict[str, float],
    device: dict[str, float],
    p95_ms: float,
    error_rate: float = 0.01,
) -> str:
    lines = [
        f'name = "{name}"',
        f'description = "{description}"',
        f"share = {share!r}",
        "[network]",
        *(f"{k} = {v!r}" for k, v in network.items()),
        "[device]",
        *(f"{k} = {v!r}" for k, v in device.items()),
        "[slo]",
        f"p95_ms = {p95_ms!r}",
        f"error_rate = {error_rate!r}",
        "",
    ]
    return "\n".join(lines)


def network_profile(folder: Path) -> Path:
    """A profile TOML whose only emulated time is one RTT per request (kept-alive)."""
    path = folder / "rtt-100ms.toml"
    path.write_text(
        _profile_toml(
            "rtt-100ms",
            "A fixed RTT on a fast link, no device time (accuracy benchmark)",
            1.0,
            {
                "rtt_ms": NETWORK_RTT_MS,
                "down_kbps": NETWORK_KBPS,
                "up_kbps": NETWORK_KBPS,
                "timeout_s": 30.0,
            },
            {"cpu_slowdown": 1.0, "base_ms": 0.0, "ms_per_kb": 0.0},
            SLO_P95_MS,
        ),
        encoding="utf-8",
    )
    return path


def page_bytes(target: TargetProcess) -> int:
    """Size of /api/page's body (one request; the target's counters are reset after it)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(target.url + "/api/page", timeout=5) as response:
        body = response.read()
    target.reset()
    return len(body)


def added_ms(profile: Profile, body_bytes: int) -> float:
    """What the emulation adds to a kept-alive GET /api/page (netmodel's prediction)."""
    timing = netmodel.predict(
        profile,
        netmodel.REQUEST_HEAD_BYTES + len("/api/page"),
        netmodel.RESPONSE_HEAD_BYTES + body_bytes,
        new_connection=False,
        body_bytes=body_bytes,
    )
    return timing.total_ms


def asset_response(target: TargetProcess, *, close: bool) -> tuple[int, int]:
    """(head bytes as the emulator counts them, body bytes) of one GET of the asset.

    The target's counters are reset after it. The head differs with the Connection header
    ("close" or "keep-alive"), so it is asked for the way the segment asks.
    """
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=5)
    try:
        conn.request("GET", ASSET_PATH, headers={"Connection": "close"} if close else {})
        response = conn.getresponse()
        body = response.read()
        head = emulated_head_bytes(response.headers)
    finally:
        conn.close()
    target.reset()
    return head, len(body)


def asset_added_ms(profile: Profile, head: int, body: int, *, new_connection: bool) -> float:
    """What the emulation adds to one GET of the asset, as emulate.py executes it."""
    timing = netmodel.predict(
        profile,
        netmodel.REQUEST_HEAD_BYTES + len(ASSET_PATH),
        head + body,
        new_connection=new_connection,
        body_bytes=body,
    )
    return timing.total_ms


def slow_profile_toml(folder: Path, slo_p95_ms: float) -> Path:
    """android-lowend-3g as built in (every network and device field), with share and SLO."""
    (builtin,) = resolve_profiles([SLOW_PROFILE])
    n, d = builtin.network, builtin.device
    path = folder / f"{SLOW_PROFILE}.toml"
    path.write_text(
        _profile_toml(
            SLOW_PROFILE,
            f"{builtin.description} (accuracy benchmark: 200 KB, a new connection each)",
            SLOW_SHARE,
            {
                "rtt_ms": n.rtt_ms,
                "down_kbps": n.down_kbps,
                "up_kbps": n.up_kbps,
                "loss_pct": n.loss_pct,
                "jitter_ms": n.jitter_ms,
                "timeout_s": n.timeout_s,
                "max_connections": n.max_connections,
                "initial_cwnd_segments": n.initial_cwnd_segments,
            },
            {"cpu_slowdown": d.cpu_slowdown, "base_ms": d.base_ms, "ms_per_kb": d.ms_per_kb},
            slo_p95_ms,
            builtin.slo.error_rate,
        ),
        encoding="utf-8",
    )
    return path


def fast_profile_toml(folder: Path, slo_p95_ms: float) -> Path:
    """A segment with no RTT, the fastest link the schema allows and no device time."""
    path = folder / f"{FAST_NAME}.toml"
    path.write_text(
        _profile_toml(
            FAST_NAME,
            "No RTT, 100 Gbit/s, no device time (accuracy benchmark)",
            1.0 - SLOW_SHARE,
            {"rtt_ms": 0.0, "down_kbps": FAST_KBPS, "up_kbps": FAST_KBPS, "timeout_s": 30.0},
            {"cpu_slowdown": 1.0, "base_ms": 0.0, "ms_per_kb": 0.0},
            slo_p95_ms,
        ),
        encoding="utf-8",
    )
    return path


# --- one run ------------------------------------------------------------------------------------


def planned_load_s(steps: Sequence[StepResult], ran: Plan, costed: Plan) -> float:
    """Warm-up + hold of every step as planned, with `costed`'s step durations.

    A step ran either in full (the plan's warm-up) or as a scout (SCOUT_FRACTION of it, see
    search.py); the stored warm-up says which. Stored windows overrun the plan by up to a second
    (the controller ticks once a second); a linear ramp would overrun alike, so planned
    durations compare like with like. The search's decisions depend on the results, not on the
    durations, so `costed` may differ from `ran` to ask what the same steps would cost there.
    """
    total = 0.0
    for step in steps:
        scout = not math.isclose(step.warmup_s, ran.warmup_s, rel_tol=1e-6, abs_tol=1e-9)
        full = PlannedStep(step.multiplier, step.phase, costed.warmup_s, costed.hold_s)
        total += (
            replace(
                full,
                warmup_s=costed.warmup_s * SCOUT_FRACTION,
                hold_s=max(costed.hold_s * SCOUT_FRACTION, min(costed.hold_s, SCOUT_MIN_HOLD_S)),
            ).duration_s
            if scout
            else full.duration_s
        )
    return total


def linear_ramp_s(truths: Sequence[float], plan: Plan) -> float:
    """A linear ramp in steps of RESOLUTION x the lowest truth from 1X up to the highest."""
    low, high = min(truths), max(truths)
    steps = math.ceil((high - 1.0) / (RESOLUTION * low) - 1e-9) + 1
    return steps * (plan.warmup_s + plan.hold_s)


@dataclass
class Ran:
    """One finished `breakpoint run`: its folder, steps, plan and summary."""

    run_dir: Path
    steps: list[StepResult]
    plan: Plan
    summary: dict[str, Any]
    wall_s: float
    notes: list[str] = field(default_factory=list)


def search(
    case: Case,
    seed: int,
    args: argparse.Namespace,
    folder: Path,
    host: str,
    scenario: Path,
    options: Sequence[str],
    env: dict[str, str] | None = None,
) -> Ran:
    """`breakpoint run` in a child process against host; raises if it fails."""
    argv = [
        sys.executable, "-m", "breakpoint", "run", str(scenario),
        "--host", host,
        "--baseline-rps", f"{case.baseline_rps:g}",
        *options,
        "--warmup-s", f"{args.warmup_s:g}",
        "--hold-s", f"{args.hold_s:g}",
        "--max-multiplier", f"{MAX_MULTIPLIER:g}",
        "--seed", str(seed),
        "--label", f"accuracy-{case.key}-s{seed}",
        "--out", str(folder / "runs"),
    ]  # fmt: skip
    began = time.monotonic()
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    wall = time.monotonic() - began
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"{case.key} seed {seed}: breakpoint run failed\n{tail}")
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    stored = load_run(run_dir)
    plan = Plan.from_dict(dict(stored.info["plan"]))
    return Ran(run_dir, list(stored.steps), plan, _summary(run_dir), wall)


def judge(case: Case, seed: int, ran: Ran, truths: Sequence[Truth]) -> list[Outcome]:
    """One outcome per segment: its break in summary.json against its truth."""
    defaults = Plan(model="open", baseline=case.baseline_rps)
    longer = replace(ran.plan, warmup_s=defaults.warmup_s, hold_s=defaults.hold_s)
    by_name = {s["profile"]: s for s in ran.summary["segments"]}
    multipliers = [t.multiplier for t in truths]
    load_s = planned_load_s(ran.steps, ran.plan, ran.plan)
    default_load_s = planned_load_s(ran.steps, ran.plan, longer)
    ramp_s = linear_ramp_s(multipliers, ran.plan)
    default_ramp_s = linear_ramp_s(multipliers, longer)
    outcomes = []
    for truth, multiplier in zip(truths, multipliers, strict=True):
        segment = by_name[truth.segment]
        found = segment["break"]
        kinds = {
            str(w.get("kind"))
            for w in ran.summary.get("warnings", [])
            if w.get("segment") in (None, truth.segment)
        }
        outcomes.append(
            Outcome(
                case=case,
                seed=seed,
                held_ms=truth.held_ms,
                added_ms=truth.added_ms,
                truth=multiplier,
                estimate=found["multiplier"],
                low=found["low"],
                high=found["high"],
                label=found["label"],
                criterion=found["criterion"],
                steps=len(ran.steps),
                load_s=load_s,
                ramp_s=ramp_s,
                wall_s=ran.wall_s,
                run_dir=ran.run_dir,
                default_load_s=default_load_s,
                default_ramp_s=default_ramp_s,
                warnings=tuple(sorted(kinds)),
                segment=truth.segment,
                slo_p95_ms=truth.slo_p95_ms,
                method=str(segment.get("method") or ""),
                notes=tuple(ran.notes),
            )
        )
    return outcomes


def run_embedded(case: Case, seed: int, args: argparse.Namespace, folder: Path) -> list[Outcome]:
    """plain, network, errors: one segment on the embedded target fetching /api/page."""
    config = TargetConfig(
        workers=WORKERS, service_ms=SERVICE_MS, seed=seed, max_queue=case.max_queue
    )
    (desktop,) = resolve_profiles([PROFILE])
    error_slo = desktop.slo.error_rate
    with start_target_process(config) as target:
        if case.rtt_ms is not None:
            profile_arg = str(network_profile(folder))
            profile = load_profile_file(Path(profile_arg)).with_slo_p95(SLO_P95_MS)
            added = added_ms(profile, page_bytes(target))
            error_slo = profile.slo.error_rate
            segment = profile.name
            emulation: list[str] = []
        else:
            profile_arg, added, emulation, segment = PROFILE, 0.0, ["--no-emulation"], PROFILE
        options = [
            "--slo-p95-ms", f"{SLO_P95_MS:g}",
            "--profiles", profile_arg,
            *emulation,
        ]  # fmt: skip
        ran = search(case, seed, args, folder, target.url, SCENARIO, options)
        held = target.stats()["held_service_ms_mean"]
    if held is None:
        raise RuntimeError(f"{case.key} seed {seed}: the target held no service")
    truth = Truth(segment, WORKERS, held, added, SLO_P95_MS, error_slo, case.baseline_rps)
    if case.max_queue is not None:
        truth = replace(truth, max_queue=case.max_queue)
    return judge(case, seed, ran, [truth])


def run_3g(case: Case, seed: int, args: argparse.Namespace, folder: Path) -> list[Outcome]:
    """android-lowend-3g (200 KB, a new connection each) and a fast segment on one M/M/4."""
    # The asset holds a worker for ASSET_COST x the unit service time: ASSET_SERVICE_MS.
    config = TargetConfig(workers=case.workers, service_ms=ASSET_SERVICE_MS / ASSET_COST, seed=seed)
    (builtin,) = resolve_profiles([SLOW_PROFILE])
    with start_target_process(config) as target:
        head_close, body = asset_response(target, close=True)
        head_alive, _ = asset_response(target, close=False)
        slow_added = asset_added_ms(builtin, head_close, body, new_connection=True)
        slow_slo = round(slow_added + SLOW_BUDGET_MS, 1)
        slow = load_profile_file(slow_profile_toml(folder, slow_slo))
        # The fast segment keeps its connections: warm, though a cold one adds nothing here.
        fast_probe = load_profile_file(fast_profile_toml(folder, FAST_BUDGET_MS))
        fast_added = asset_added_ms(fast_probe, head_alive, body, new_connection=False)
        fast = load_profile_file(fast_profile_toml(folder, round(fast_added + FAST_BUDGET_MS, 3)))
        options = ["--profiles", f"{slow.path},{fast.path}"]
        env = {"BP_ACCURACY_PATH": ASSET_PATH, "BP_ACCURACY_CLOSE": slow.name}
        ran = search(case, seed, args, folder, target.url, ONE_PATH_SCENARIO, options, env)
        stats = target.stats()
    held = stats["held_service_ms_mean"]
    if held is None:
        raise RuntimeError(f"{case.key} seed {seed}: the target held no service")
    served = {k: v for k, v in stats["requests"].items() if not k.startswith("/__")}
    if set(served) != {ASSET_PATH}:
        raise RuntimeError(f"{case.key} seed {seed}: unexpected requests {served}")
    held_ms = held * ASSET_COST  # held_service_ms_mean is per unit cost
    ran.notes.append(
        f"target: {served[ASSET_PATH]} asset responses, worker held {held_ms:.2f} ms each "
        f"(drawn {stats['drawn_service_ms_mean'] * ASSET_COST:.2f} ms), "
        f"{stats['connections_total']} connections; responses written after the worker "
        "was released, writes (drain) "
        + ", ".join(
            f"mean {d['mean']:.0f} ms, max {d['max']:.0f} ms"
            for k, d in stats["drain_ms"].items()
            if k == ASSET_PATH and d["mean"] is not None
        )
    )
    truths = [
        Truth(
            slow.name, case.workers, held_ms, slow_added, slow.slo.p95_ms, 0.01, case.baseline_rps
        ),
        Truth(
            fast.name, case.workers, held_ms, fast_added, fast.slo.p95_ms, 0.01, case.baseline_rps
        ),
    ]
    return judge(case, seed, ran, truths)


# --- gunicorn -----------------------------------------------------------------------------------


class Gunicorn:
    """gunicorn (sync workers) serving benchmarks/sleepy_wsgi.py on 127.0.0.1, in a child."""

    def __init__(self, folder: Path, seed: int) -> None:
        if importlib.util.find_spec("gunicorn") is None:
            raise RuntimeError("the gunicorn case needs gunicorn: pip install -e '.[bench]'")
        from gunicorn.config import KNOWN_SETTINGS

        self.access_log = folder / f"gunicorn-s{seed}-access.log"
        self.held_log = folder / f"gunicorn-s{seed}-held.log"
        self.error_log = folder / f"gunicorn-s{seed}-error.log"
        for path in (self.access_log, self.held_log, self.error_log):
            path.unlink(missing_ok=True)
        argv = [
            sys.executable, "-m", "gunicorn",
            "--config", str(HERE / "sleepy_gunicorn.py"),
            "--worker-class", "sleepy_gunicorn.TimedSyncWorker",
            "--workers", str(GUNICORN_WORKERS),
            "--bind", "127.0.0.1:0",
            "--backlog", str(GUNICORN_BACKLOG),
            "--graceful-timeout", "5",
            "--access-logfile", str(self.access_log),
            "--access-logformat", GUNICORN_LOG_FORMAT,
            "--error-logfile", str(self.error_log),
            "--chdir", str(HERE),
        ]  # fmt: skip
        # gunicorn 25+ opens a control socket under ~/.gunicorn unless told not to.
        if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS):
            argv.append("--no-control-socket")
        argv.append("sleepy_wsgi:app")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p
            ),
            "BP_SLEEPY_MEAN_MS": repr(GUNICORN_SERVICE_MS),
            "BP_SLEEPY_SEED": str(seed),
            "BP_SLEEPY_HELD_LOG": str(self.held_log),
        }
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env
        )
        try:
            self.port = self._wait_until_serving(timeout_s=20.0)
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{self.port}"

    def _wait_until_serving(self, timeout_s: float) -> int:
        """The bound port once every worker answers (a 404 path: no sleep, not counted)."""
        deadline = time.monotonic() + timeout_s
        port = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self._error_tail()}")
            text = self.error_log.read_text(encoding="utf-8") if self.error_log.exists() else ""
            if port is None and "Listening at: http://127.0.0.1:" in text:
                port = int(text.split("Listening at: http://127.0.0.1:", 1)[1].split()[0])
            if port is not None and text.count("Booting worker") >= GUNICORN_WORKERS:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/ready")
                    conn.getresponse().read()
                    conn.close()
                    time.sleep(0.5)  # the other workers import the app meanwhile
                    return port
                except OSError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not start within {timeout_s:g} s: {self._error_tail()}")

    def _error_tail(self) -> str:
        if not self.error_log.exists():
            return "(no error log)"
        return " | ".join(self.error_log.read_text(encoding="utf-8").strip().splitlines()[-3:])

    def stop(self) -> None:
        """SIGTERM to the master (it stops its workers), SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def held(self) -> list[tuple[float, float]]:
        """(epoch start, ms held) of every connection that carried GET /work."""
        rows = []
        for line in self.held_log.read_text(encoding="ascii").splitlines():
            path, held_us, began = line.split()
            if path == GUNICORN_PATH:
                rows.append((float(began), int(held_us) / 1000.0))
        return rows

    def access(self) -> tuple[int, float, float, dict[str, int]]:
        """From the access log: /work requests, mean %(D)s and mean drawn sleep (ms), statuses."""
        d_ms, drawn_ms = [], []
        statuses: dict[str, int] = {}
        for line in self.access_log.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) < 6 or parts[1] != GUNICORN_PATH:
                continue
            statuses[parts[3]] = statuses.get(parts[3], 0) + 1
            d_ms.append(int(parts[4]) / 1000.0)
            if parts[5] != "-":
                drawn_ms.append(int(parts[5]) / 1000.0)
        return (
            len(d_ms),
            statistics.fmean(d_ms) if d_ms else math.nan,
            statistics.fmean(drawn_ms) if drawn_ms else math.nan,
            statuses,
        )


def held_in_windows(
    rows: Sequence[tuple[float, float]], steps: Sequence[StepResult], near: Callable[[float], bool]
) -> float | None:
    """Mean held time of the connections that began in measured windows of chosen levels."""
    windows = [
        (s.started_at + s.warmup_s, s.started_at + s.warmup_s + s.measured_s)
        for s in steps
        if near(s.multiplier)
    ]
    values = [ms for began, ms in rows if any(a <= began < b for a, b in windows)]
    return statistics.fmean(values) if values else None


def run_gunicorn(case: Case, seed: int, args: argparse.Namespace, folder: Path) -> list[Outcome]:
    """gunicorn with GUNICORN_WORKERS sync workers, no emulation: M/M/c with the held time."""
    with Gunicorn(folder, seed) as server:
        options = [
            "--slo-p95-ms", f"{SLO_P95_MS:g}",
            "--profiles", PROFILE,
            "--no-emulation",
        ]  # fmt: skip
        env = {"BP_ACCURACY_PATH": GUNICORN_PATH, "BP_ACCURACY_CLOSE": ""}
        ran = search(case, seed, args, folder, server.url, ONE_PATH_SCENARIO, options, env)
        server.stop()  # flushes and closes the logs
        rows = server.held()
        requests, d_mean, drawn_mean, statuses = server.access()
    if not rows:
        raise RuntimeError(f"{case.key} seed {seed}: gunicorn logged no held time")
    held = statistics.fmean(ms for _, ms in rows)
    (desktop,) = resolve_profiles([PROFILE])
    truth = Truth(
        PROFILE, case.workers, held, 0.0, SLO_P95_MS, desktop.slo.error_rate, case.baseline_rps
    )
    by_d = replace(truth, held_ms=d_mean).multiplier
    near = held_in_windows(rows, ran.steps, lambda m: abs(m / truth.multiplier - 1.0) <= 0.1)
    low = held_in_windows(rows, ran.steps, lambda m: m <= 2.0)
    ran.notes.append(
        f"gunicorn: {requests} GET {GUNICORN_PATH} in the access log (statuses "
        f"{', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))}); worker held "
        f"{held:.2f} ms per connection over the run ({len(rows)} connections), "
        f"{_x(near)} ms in the windows within 10% of the truth, {_x(low)} ms at 1-2X; "
        f"access log %(D)s {d_mean:.2f} ms, drawn sleep {drawn_mean:.2f} ms; "
        f"truth from %(D)s would be {by_d:.2f}X instead of {truth.multiplier:.2f}X"
    )
    return judge(case, seed, ran, [truth])


def run_one(case: Case, seed: int, args: argparse.Namespace, folder: Path) -> list[Outcome]:
    runner = {"embedded": run_embedded, "3g": run_3g, "gunicorn": run_gunicorn}[case.kind]
    return runner(case, seed, args, folder)


def _summary(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return data


# --- output -------------------------------------------------------------------------------------


def _x(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.2f}"


def run_table(outcomes: Sequence[Outcome]) -> list[str]:
    lines = [
        "| case | segment | seed | held ms | added ms | SLO p95 ms | truth X | estimate X | error "
        "| label (criterion) | placed by | interval X | covers | steps | load-time s "
        "| linear ramp s | ratio | ratio at default steps | wall s | warnings |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for o in outcomes:
        error = "-" if o.error is None else f"{o.error:+.1%}"
        lines.append(
            f"| {o.case.title} | {o.segment} | {o.seed} | {o.held_ms:.2f} | {_ms(o.added_ms)} | "
            f"{o.slo_p95_ms:g} | {o.truth:.2f} | {_x(o.estimate)} | {error} | "
            f"{o.label} ({o.criterion or '-'}) | {o.placement} | "
            f"[{_x(o.low)}, {_x(o.high)}] | {'yes' if o.covers else 'no'} | {o.steps} | "
            f"{o.load_s:.0f} | {o.ramp_s:.0f} | {o.ratio:.0%} | "
            f"{o.default_ratio:.0%} | {o.wall_s:.0f} | {', '.join(o.warnings) or '-'} |"
        )
    return lines


def _groups(outcomes: Sequence[Outcome]) -> list[tuple[str, list[Outcome]]]:
    """Outcomes by case (in CASES order) and segment (in the order first seen)."""
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for case in CASES.values():
        for o in outcomes:
            if o.case is case:
                groups.setdefault((case.key, o.segment), []).append(o)
    out = []
    for (key, segment), mine in groups.items():
        several = len({o.segment for o in outcomes if o.case.key == key}) > 1
        out.append((f"{CASES[key].title}{f' / {segment}' if several else ''}", mine))
    return out


def side_by_side(outcomes: Sequence[Outcome]) -> list[str]:
    lines = [
        "| case | runs | mean truth X | mean estimate X | mean error | max abs error "
        "| within 5% | bracketed | placed by fit | interval covers "
        "| load-time / ramp: mean (max) | at default steps: mean (max) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for title, mine in _groups(outcomes):
        errors = [o.error for o in mine if o.error is not None]
        estimates = [o.estimate for o in mine if o.estimate is not None]
        at_default = [o.default_ratio for o in mine]
        n = len(mine)
        lines.append(
            f"| {title} | {n} | {statistics.mean(o.truth for o in mine):.2f} | "
            f"{_x(statistics.mean(estimates) if estimates else None)} | "
            f"{statistics.mean(errors):+.1%} | "
            f"{max(abs(e) for e in errors):.1%} | "
            f"{sum(abs(e) <= RESOLUTION for e in errors)}/{n} | "
            f"{sum(o.label == 'bracketed' for o in mine)}/{n} | "
            f"{sum(o.placement.startswith(('fit', 'Poisson fit')) for o in mine)}/{n} | "
            f"{sum(o.covers for o in mine)}/{n} | "
            f"{statistics.mean(o.ratio for o in mine):.0%} ({max(o.ratio for o in mine):.0%}) | "
            f"{statistics.mean(at_default):.0%} ({max(at_default):.0%}) |"
            if errors
            else f"| {title} | {n} | - | - | - | - | 0/{n} | - | - | - | - | - |"
        )
    return lines


def _counts(mine: Sequence[Outcome]) -> str:
    n = len(mine)
    within = sum(o.error is not None and abs(o.error) <= RESOLUTION for o in mine)
    covers = sum(o.covers for o in mine)
    widths = [(o.high - o.low) / o.truth for o in mine if o.low is not None and o.high is not None]
    width = f", median width {statistics.median(widths):.1%} of the truth" if widths else ""
    return f"within 5% {within}/{n}, interval covers {covers}/{n}{width}"


def case_lines(outcomes: Sequence[Outcome]) -> list[str]:
    """A line per case (all its segments and seeds) and one over every case."""
    lines = []
    for case in CASES.values():
        mine = [o for o in outcomes if o.case is case]
        if mine:
            lines.append(f"- {case.title}: {_counts(mine)}")
    covers = sum(o.covers for o in outcomes)
    lines.append(
        f"- overall ({len(outcomes)} breaks): {_counts(outcomes)} "
        f"({covers / len(outcomes):.0%} coverage)"
    )
    return lines


def note_lines(outcomes: Sequence[Outcome]) -> list[str]:
    """The servers' own figures, once per run."""
    seen: set[Path] = set()
    lines: list[str] = []
    for o in outcomes:
        if o.notes and o.run_dir not in seen:
            seen.add(o.run_dir)
            lines.extend(f"- {o.case.title}, seed {o.seed}: {note}" for note in o.notes)
    return lines


def step_lines(outcomes: Sequence[Outcome], truths: dict[str, Truth] | None = None) -> list[str]:
    """Every step of one run, per segment: requests, p95 against the model's, errors."""
    if not outcomes:
        return []
    stored = load_run(outcomes[0].run_dir)
    lines = []
    for step in stored.steps:
        head = (
            f"  step {step.index:2d} {step.phase:7s} {step.multiplier:6.2f}X "
            f"{step.warmup_s:4.1f}+{step.measured_s:4.1f} s cpu {step.generator.cpu_pct_mean:3.0f}%"
            f"{' BOUND' if step.generator.bound else ''}"
        )
        parts = []
        for name, seg in step.segments.items():
            model = ""
            if truths and name in truths:
                predicted = truths[name].model_p95_ms(step.multiplier)
                model = f" (model {_ms(predicted)})" if math.isfinite(predicted) else " (model inf)"
            p95 = "-" if seg.p95_ms is None else _ms(seg.p95_ms)
            parts.append(
                f"{name}: {seg.requests} req, p95 {p95}{model} ms, "
                f"err {seg.error_count}+{seg.unfinished} unfinished"
            )
        lines.append(head + " | " + " | ".join(parts))
    return lines


def _truths_of(outcomes: Sequence[Outcome]) -> dict[str, Truth]:
    """Rebuild each segment's queue from an outcome, for the per-step model p95."""
    out = {}
    for o in outcomes:
        case = o.case
        out[o.segment] = Truth(
            o.segment,
            case.workers,
            o.held_ms,
            o.added_ms,
            o.slo_p95_ms,
            0.01,
            case.baseline_rps,
            case.max_queue,
        )
    return out


def _write_readme(text: str) -> None:
    write_section(README, HEADING, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, default=None, help="seeds per case (default 3)")
    parser.add_argument("--first-seed", type=int, default=1, help="first seed (default 1)")
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}"
    )
    parser.add_argument("--warmup-s", type=float, default=None, help="per step (default 5)")
    parser.add_argument("--hold-s", type=float, default=None, help="per step (default 10)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: 1 seed, {QUICK_WARMUP_S:g} s + {QUICK_HOLD_S:g} s steps, every step "
        "printed, README left alone (pick the case with --cases)",
    )
    parser.add_argument("--show-steps", action="store_true", help="print every step of each run")
    parser.add_argument("--no-readme", action="store_true", help="only print the figures")
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the run folders here (default: discarded)"
    )
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    if args.warmup_s is None:
        args.warmup_s = QUICK_WARMUP_S if args.quick else 5.0
    if args.hold_s is None:
        args.hold_s = QUICK_HOLD_S if args.quick else 10.0
    if args.quick:
        args.no_readme = True
        args.show_steps = True
    keys = [k.strip() for k in args.cases.split(",") if k.strip()]
    unknown = [k for k in keys if k not in CASES]
    if unknown or args.seeds < 1:
        parser.error(f"unknown case(s) {', '.join(unknown)}" if unknown else "--seeds must be >= 1")
    began = time.monotonic()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="bp-accuracy-") as tmp:
        folder = args.keep if args.keep is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        # Seeds outermost: a partial result already covers every case.
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for key in keys:
                found = run_one(CASES[key], seed, args, folder)
                outcomes.extend(found)
                print("\n".join(run_table(found)[2:]), flush=True)
                if args.show_steps:
                    print("\n".join(step_lines(found, _truths_of(found))), flush=True)
                for line in note_lines(found):
                    print(line, flush=True)
    took = time.monotonic() - began
    plan = Plan(model="open", baseline=BASELINE_RPS, warmup_s=args.warmup_s, hold_s=args.hold_s)
    defaults = Plan(model="open", baseline=BASELINE_RPS)
    command = "python benchmarks/accuracy.py" + "".join(
        f" {flag} {value}"
        for flag, value, default in (
            ("--seeds", args.seeds, 3),
            ("--first-seed", args.first_seed, 1),
            ("--cases", ",".join(keys), ",".join(CASES)),
            ("--warmup-s", f"{args.warmup_s:g}", "5"),
            ("--hold-s", f"{args.hold_s:g}", "10"),
        )
        if value != default
    )
    lines = [
        HEADING,
        "",
        f"`{command}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; took {took / 60:.1f} min). Each run is `breakpoint run` "
        f"against a fresh server on 127.0.0.1 with SLO p95 < {SLO_P95_MS:g} ms of server time "
        f"(except 3G) and errors < 1%, {args.warmup_s:g} s warm-up + {args.hold_s:g} s hold "
        "per step, "
        f"--max-multiplier {MAX_MULTIPLIER:g}. The first three cases use the embedded target "
        f"({WORKERS} workers, exponential {SERVICE_MS:g} ms) with 1X = {BASELINE_RPS:g} req/s; "
        "truths from the held service time: Erlang C (plain), Erlang C + "
        f"{NETWORK_RTT_MS:g} ms added by the emulated RTT (network), M/M/8/{WORKERS + MAX_QUEUE} "
        f"blocking = 1% (errors). 3G: one run with two segments on one embedded "
        f"M/M/{ASSET_WORKERS} whose every request is the 200 KB asset, holding a worker for an "
        f"exponential {ASSET_SERVICE_MS:g} ms (a break near 93 req/s, which the generator can "
        f"reach), 1X = {ASSET_BASELINE_RPS:g} req/s: {SLOW_PROFILE} ({SLOW_SHARE:.0%} of "
        "arrivals, full emulation, a new connection per request) whose SLO is the network "
        f"model's constant time + {SLOW_BUDGET_MS:g} ms, and a segment with no network time "
        f"({FAST_NAME}, SLO {FAST_BUDGET_MS:g} ms); each truth is where that constant + Erlang "
        "C's p95 sojourn at the total arrival rate reaches its SLO. gunicorn: "
        f"{GUNICORN_WORKERS} sync workers "
        f"sleeping an exponential {GUNICORN_SERVICE_MS:g} ms (benchmarks/sleepy_wsgi.py), no "
        f"emulation, 1X = {GUNICORN_BASELINE_RPS:g} req/s: Erlang C with the time each "
        "connection held a worker (accept to close, timed around gunicorn's SyncWorker; the "
        "access log's %(D)s misses the parse, the log line and the lingering close, see the "
        "notes). 'Placed by': how the analysis placed the break (summary.json's method). "
        "Load-time: warm-up + hold of every step as planned (scouts shorter, as the stored "
        "warm-up shows); linear ramp: steps of 5% of the lowest truth from 1X to the highest, "
        f"full steps (search.linear_ramp_load_time_s, from 5% of the break, gives "
        f"{linear_ramp_load_time_s(plan, RESOLUTION):.0f} s). 'At default steps': the same "
        f"decisions costed with {defaults.warmup_s:g} s + {defaults.hold_s:g} s steps against "
        "a ramp of such steps (scouts are never held under 5 s, so short steps flatter the "
        f"ramp). Goals: within 5% when bracketed, load-time at most {RAMP_GOAL:.0%} of the "
        "ramp.",
        "",
        *run_table(outcomes),
        "",
        "Side by side:",
        "",
        *side_by_side(outcomes),
        "",
        *case_lines(outcomes),
    ]
    notes = note_lines(outcomes)
    if notes:
        lines += ["", "The servers' own figures:", "", *notes]
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if not args.no_readme:
        _write_readme(text)
        print(f"written to {README}")
    # Exit 1 when a goal is missed; the load-time goal is judged at the default step durations.
    ok = all(
        o.error is not None and abs(o.error) <= RESOLUTION and o.default_ratio <= RAMP_GOAL
        for o in outcomes
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
