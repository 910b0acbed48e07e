"""Benchmark of the breaking point's accuracy and the search's cost (DESIGN.md sections 6 and 10).

Run: `python benchmarks/accuracy.py [--seeds N] [--first-seed S] [--cases a,b,c] [--no-readme]`
(about 10 minutes per seed for the three cases; the default is 3 seeds). Each run is the real
`breakpoint run` (a child process) against a fresh embedded target on 127.0.0.1 whose breaking
point is known from queueing theory, with 1X = 40 req/s, SLO p95 < 250 ms and errors < 1%:

- plain: 8 workers, exponential service of mean 20 ms, no emulation: an M/M/8 queue; the truth
  is where Erlang C's p95 sojourn reaches the SLO (9.68X at exactly 20 ms).
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

Every truth uses the service time the target reports it actually held (held_service_ms_mean):
timers wake late and each seed's draws have their own mean. Printed per run: estimate vs truth,
error, label, interval and whether it covers the truth, and the load-time (warm-up + hold of
every step as planned) against a linear ramp reaching the same resolution: steps of 5% of the
true break from 1X up to it, each held like a full plan step (goal: at most 60%). Short steps
flatter the ramp: a scouting step is never held less than 5 s (search.SCOUT_MIN_HOLD_S), so with
5 s holds scouts save nothing. The search's decisions depend on the results, not on the
durations, so the same steps are also costed with the plan's default steps (5 s warm-up + 20 s
hold) against a ramp of such steps. Then a side-by-side summary per case. The figures are also
written to benchmarks/README.md under "## accuracy.py" (other sections are left alone).

Step durations default to 5 s + 10 s (3 seeds x 3 cases take about 30 minutes), as the
ground-truth e2e test holds them: the break sits at 96-97% of capacity, where a queue needs about
6 s to settle (model.relaxation_s), so 3 s + 5 s steps pass levels that would fail in steady
state and bias the estimate high (about +4% on the M/M/8 case, 2026-11-24), while the analysis
flags them (`not_steady`) and widens the interval. `--warmup-s 3 --hold-s 5` is the quick look.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from _readme import write_section

from breakpoint import netmodel, queueing
from breakpoint.config import Plan, PlannedStep
from breakpoint.demo.target import TargetConfig, TargetProcess, start_target_process
from breakpoint.profiles import Profile, load_profile_file, resolve_profiles
from breakpoint.results import StepResult
from breakpoint.search import SCOUT_FRACTION, SCOUT_MIN_HOLD_S, linear_ramp_load_time_s
from breakpoint.store import load_run

ROOT = Path(__file__).resolve().parents[1]
README = Path(__file__).with_name("README.md")
HEADING = "## accuracy.py"
SCENARIO = ROOT / "scenarios" / "ground_truth.py"

WORKERS = 8
SERVICE_MS = 20.0
BASELINE_RPS = 40.0
SLO_P95_MS = 250.0
MAX_MULTIPLIER = 12.0
PROFILE = "desktop-broadband"  # error SLO 1%; its latency SLO is overridden by SLO_P95_MS
NETWORK_RTT_MS = 100.0
NETWORK_KBPS = 1_000_000.0  # 1 Gbit/s: the 2 KB page moves in 0.02 ms, the RTT is all
MAX_QUEUE = 0  # Erlang B: see the module docstring
RESOLUTION = 0.05  # DESIGN.md section 10: locate each break to 5%
RAMP_GOAL = 0.60
RUN_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Case:
    """One target configuration whose break is known."""

    key: str
    title: str
    max_queue: int | None = None
    rtt_ms: float | None = None  # None: --no-emulation


CASES = {
    "plain": Case("plain", "M/M/8, 20 ms"),
    "network": Case("network", f"M/M/8 + {NETWORK_RTT_MS:g} ms RTT", rtt_ms=NETWORK_RTT_MS),
    "errors": Case("errors", f"M/M/8/{WORKERS + MAX_QUEUE} (503s)", max_queue=MAX_QUEUE),
}


@dataclass(frozen=True)
class Outcome:
    """One search against one target, judged against its truth."""

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


# --- truths -------------------------------------------------------------------------------------


def network_profile(folder: Path) -> Path:
    """A profile TOML whose only emulated time is one RTT per request (kept-alive)."""
    path = folder / "rtt-100ms.toml"
    path.write_text(
        "\n".join(
            [
                'name = "rtt-100ms"',
                'description = "A fixed RTT on a fast link, no device time (accuracy benchmark)"',
                "share = 1.0",
                "[network]",
                f"rtt_ms = {NETWORK_RTT_MS:g}",
                f"down_kbps = {NETWORK_KBPS:g}",
                f"up_kbps = {NETWORK_KBPS:g}",
                "timeout_s = 30",
                "[device]",
                "cpu_slowdown = 1.0",
                "base_ms = 0",
                "ms_per_kb = 0",
                "[slo]",
                f"p95_ms = {SLO_P95_MS:g}",
                "error_rate = 0.01",
                "",
            ]
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


def truth_multiplier(case: Case, held_ms: float, added: float, error_slo: float) -> float:
    service_s = held_ms / 1000.0
    if case.max_queue is not None:
        rate = queueing.finite_blocking_break_rate(WORKERS, case.max_queue, service_s, error_slo)
    else:
        rate = queueing.break_rate(WORKERS, service_s, SLO_P95_MS, added_ms=added)
    return rate / BASELINE_RPS


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


def linear_ramp_s(truth: float, plan: Plan) -> float:
    """A linear ramp in steps of RESOLUTION x truth from 1X up to the truth, full steps."""
    steps = math.ceil((truth - 1.0) / (RESOLUTION * truth) - 1e-9) + 1
    return steps * (plan.warmup_s + plan.hold_s)


def run_one(case: Case, seed: int, args: argparse.Namespace, folder: Path) -> Outcome:
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
            emulation: list[str] = []
        else:
            profile_arg, added, emulation = PROFILE, 0.0, ["--no-emulation"]
        argv = [
            sys.executable, "-m", "breakpoint", "run", str(SCENARIO),
            "--host", target.url,
            "--baseline-rps", f"{BASELINE_RPS:g}",
            "--slo-p95-ms", f"{SLO_P95_MS:g}",
            "--profiles", profile_arg,
            *emulation,
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
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wall = time.monotonic() - began
        held = target.stats()["held_service_ms_mean"]
    if done.returncode != 0 or held is None:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"{case.key} seed {seed}: breakpoint run failed\n{tail}")
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    stored = load_run(run_dir)
    plan = Plan.from_dict(dict(stored.info["plan"]))
    defaults = Plan(model="open", baseline=BASELINE_RPS)
    longer = replace(plan, warmup_s=defaults.warmup_s, hold_s=defaults.hold_s)
    summary = _summary(run_dir)
    (segment,) = summary["segments"]
    found = segment["break"]
    truth = truth_multiplier(case, held, added, error_slo)
    return Outcome(
        case=case,
        seed=seed,
        held_ms=held,
        added_ms=added,
        truth=truth,
        estimate=found["multiplier"],
        low=found["low"],
        high=found["high"],
        label=found["label"],
        criterion=found["criterion"],
        steps=len(stored.steps),
        load_s=planned_load_s(stored.steps, plan, plan),
        ramp_s=linear_ramp_s(truth, plan),
        wall_s=wall,
        run_dir=run_dir,
        default_load_s=planned_load_s(stored.steps, plan, longer),
        default_ramp_s=linear_ramp_s(truth, longer),
        warnings=tuple(sorted({str(w.get("kind")) for w in summary.get("warnings", [])})),
    )


def _summary(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return data


# --- output -------------------------------------------------------------------------------------


def _x(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def run_table(outcomes: Sequence[Outcome]) -> list[str]:
    lines = [
        "| case | seed | held ms | truth X | estimate X | error | label (criterion) "
        "| interval X | covers | steps | load-time s | linear ramp s | ratio "
        "| ratio at default steps | wall s | warnings |",
        "|---|---:|---:|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for o in outcomes:
        error = "-" if o.error is None else f"{o.error:+.1%}"
        lines.append(
            f"| {o.case.title} | {o.seed} | {o.held_ms:.2f} | {o.truth:.2f} | "
            f"{_x(o.estimate)} | {error} | {o.label} ({o.criterion or '-'}) | "
            f"[{_x(o.low)}, {_x(o.high)}] | {'yes' if o.covers else 'no'} | {o.steps} | "
            f"{o.load_s:.0f} | {o.ramp_s:.0f} | {o.ratio:.0%} | "
            f"{o.default_ratio:.0%} | {o.wall_s:.0f} | {', '.join(o.warnings) or '-'} |"
        )
    return lines


def side_by_side(outcomes: Sequence[Outcome]) -> list[str]:
    lines = [
        "| case | runs | mean truth X | mean estimate X | mean error | max abs error "
        "| within 5% | bracketed | interval covers | load-time / ramp: mean (max) "
        "| at default steps: mean (max) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in CASES.values():
        mine = [o for o in outcomes if o.case is case]
        if not mine:
            continue
        errors = [o.error for o in mine if o.error is not None]
        estimates = [o.estimate for o in mine if o.estimate is not None]
        at_default = [o.default_ratio for o in mine]
        n = len(mine)
        lines.append(
            f"| {case.title} | {n} | {statistics.mean(o.truth for o in mine):.2f} | "
            f"{_x(statistics.mean(estimates) if estimates else None)} | "
            f"{statistics.mean(errors):+.1%} | "
            f"{max(abs(e) for e in errors):.1%} | "
            f"{sum(abs(e) <= RESOLUTION for e in errors)}/{n} | "
            f"{sum(o.label == 'bracketed' for o in mine)}/{n} | "
            f"{sum(o.covers for o in mine)}/{n} | "
            f"{statistics.mean(o.ratio for o in mine):.0%} ({max(o.ratio for o in mine):.0%}) | "
            f"{statistics.mean(at_default):.0%} ({max(at_default):.0%}) |"
            if errors
            else f"| {case.title} | {n} | - | - | - | - | 0/{n} | - | - | - | - |"
        )
    return lines


def _write_readme(text: str) -> None:
    write_section(README, HEADING, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per case (default 3)")
    parser.add_argument("--first-seed", type=int, default=1, help="first seed (default 1)")
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}"
    )
    parser.add_argument("--warmup-s", type=float, default=5.0, help="per step (default 5)")
    parser.add_argument("--hold-s", type=float, default=10.0, help="per step (default 10)")
    parser.add_argument("--no-readme", action="store_true", help="only print the figures")
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the run folders here (default: discarded)"
    )
    args = parser.parse_args(argv)
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
                outcome = run_one(CASES[key], seed, args, folder)
                outcomes.append(outcome)
                print("\n".join(run_table([outcome])[2:]), flush=True)
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
        f"{platform.python_version()}; took {took / 60:.1f} min). Each run is `breakpoint run "
        f"scenarios/ground_truth.py` against a fresh embedded target (8 workers, exponential "
        f"{SERVICE_MS:g} ms) with 1X = {BASELINE_RPS:g} req/s, SLO p95 < {SLO_P95_MS:g} ms "
        f"and errors < 1%, {args.warmup_s:g} s warm-up + {args.hold_s:g} s hold per step, "
        f"--max-multiplier {MAX_MULTIPLIER:g}. Truths from the held service time: Erlang C "
        f"(plain), Erlang C + {NETWORK_RTT_MS:g} ms added by the emulated RTT (network), "
        f"M/M/8/{WORKERS + MAX_QUEUE} blocking = 1% (errors). Load-time: warm-up + hold of every "
        "step as planned (scouts shorter, as the stored warm-up shows); linear ramp: steps of "
        "5% of the truth from 1X to the truth, full steps "
        f"(search.linear_ramp_load_time_s, from 5% of the break, gives "
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
    ]
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
