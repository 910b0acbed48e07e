"""Benchmark of the measuring path: the recorder's cost and 1 vs 2 local worker processes.

Run: `python benchmarks/measurement.py [--quick] [--no-readme]` (about 3 minutes; --quick about
1.5). Against the embedded target on 127.0.0.1 (64 workers, 0.05 ms constant
service: the target's own CPU, printed, is the only limit it has), FastHttpUsers with no wait
time fetching /api/page, it prints side by side:

1. Recorder overhead (DESIGN.md section 10): requests per second of one Locust process without
   and with breakpoint's `Recorder.on_request` listener on `events.request` (the users tag their
   requests with a segment, so every request is really recorded into the HdrHistograms).
   An empty listener is measured too (Locust's own cost of dispatching the event). Variants
   alternate, medians of the repeats. Goal: the recorder costs under 10%.
2. Distributed ceiling: Locust master in this process with 1, then 2, local worker processes
   (the same user class, 50 users per worker), alternating. Goal: 2 workers give at least 1.7x.

Requests are counted by the target (/__stats), not by the generator, so every variant is
measured the same way; each process's CPU is sampled with psutil over the window.

The figures are also written to benchmarks/README.md under "## measurement.py" (other sections
of that file are left alone).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import locust
import psutil
from _readme import write_section
from locust import FastHttpUser, constant, task
from locust.env import Environment

from breakpoint.demo.target import TargetConfig, TargetProcess, start_target_process
from breakpoint.recorder import Recorder

README = Path(__file__).with_name("README.md")
HEADING = "## measurement.py"
SEGMENT = "bench"
USERS_PER_PROCESS = 50


class PageUser(FastHttpUser):
    """GET /api/page with no wait; requests carry a segment tag as breakpoint's wrapping does."""

    wait_time = constant(0)

    def context(self) -> dict[str, Any]:
        return {"bp_segment": SEGMENT, "bp_lag_ms": 0.0}

    @task
    def page(self) -> None:
        self.client.get("/api/page", name="/api/page")


@dataclass(frozen=True)
class Window:
    """One measured window: requests the target answered, and the CPU (percent of one core)
    of each process involved and of the whole machine."""

    rps: float
    generator_cpu_pct: tuple[float, ...]  # one entry per generator process
    target_cpu_pct: float
    master_cpu_pct: float  # this process when it is only the master (part 2), else 0
    machine_cpu_pct: float  # every process on the machine (up to 100 x cores)

    @property
    def rps_per_cpu_s(self) -> float:
        cpu = sum(self.generator_cpu_pct) / 100.0
        return self.rps / cpu if cpu > 0 else 0.0

    @property
    def others_cpu_pct(self) -> float:
        """CPU used meanwhile by processes that are not part of the benchmark."""
        ours = sum(self.generator_cpu_pct) + self.target_cpu_pct + self.master_cpu_pct
        return max(0.0, self.machine_cpu_pct - ours)


def _served(target: TargetProcess) -> int:
    return int(target.stats()["requests"].get("/api/page", 0))


def _measure(target: TargetProcess, generators: list[psutil.Process], seconds: float) -> Window:
    """Count what the target served over `seconds` and the CPU each process used meanwhile."""
    target_proc, me = psutil.Process(target.process.pid), psutil.Process()
    for p in [target_proc, me, *generators]:
        p.cpu_percent(None)
    psutil.cpu_percent(None)
    before, t0 = _served(target), time.perf_counter()
    gevent.sleep(seconds)
    after, t1 = _served(target), time.perf_counter()
    generator_cpu = tuple(p.cpu_percent(None) for p in generators)
    master_cpu = me.cpu_percent(None)
    return Window(
        rps=(after - before) / (t1 - t0),
        generator_cpu_pct=generator_cpu,
        target_cpu_pct=target_proc.cpu_percent(None),
        master_cpu_pct=0.0 if me.pid in {p.pid for p in generators} else master_cpu,
        machine_cpu_pct=psutil.cpu_percent(None) * (psutil.cpu_count() or 1),
    )


# -- 1. recorder overhead ----------------------------------------------------------------------

VARIANTS = ("plain", "no-op listener", "recorder")


def _one_process(target: TargetProcess, variant: str, *, warmup_s: float, hold_s: float) -> Window:
    env = Environment(user_classes=[PageUser], host=target.url)
    recorder: Recorder | None = None
    if variant == "no-op listener":
        env.events.request.add_listener(lambda **_: None)
    elif variant == "recorder":
        recorder = Recorder([SEGMENT])
        recorder.open_step(0, 1.0, 0.0, "ramp", 0.0, start=time.time())
        env.events.request.add_listener(recorder.on_request)
    runner = env.create_local_runner()
    runner.start(USERS_PER_PROCESS, spawn_rate=USERS_PER_PROCESS)
    gevent.sleep(warmup_s)
    window = _measure(target, [psutil.Process()], hold_s)
    runner.quit()
    if recorder is not None and recorder.result(0, final=False).segments[SEGMENT].requests == 0:
        raise RuntimeError("the recorder recorded nothing: the benchmark measures the wrong path")
    return window


# -- 2. local worker processes -----------------------------------------------------------------


def _worker_main(master_host: str, master_port: int) -> int:
    env = Environment(user_classes=[PageUser], host="http://127.0.0.1")
    runner = env.create_worker_runner(master_host, master_port)
    runner.greenlet.join()
    return 0


def _distributed(target: TargetProcess, workers: int, *, warmup_s: float, hold_s: float) -> Window:
    env = Environment(user_classes=[PageUser], host=target.url)
    runner = env.create_master_runner("127.0.0.1", 0)
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--_worker", f"127.0.0.1:{runner.server.port}"],
            stdin=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    try:
        deadline = time.time() + 60
        while len(runner.clients.ready) < workers:
            if time.time() > deadline:
                raise RuntimeError(f"only {len(runner.clients.ready)} of {workers} workers joined")
            gevent.sleep(0.1)
        runner.start(USERS_PER_PROCESS * workers, spawn_rate=USERS_PER_PROCESS * workers)
        gevent.sleep(warmup_s)
        window = _measure(target, [psutil.Process(p.pid) for p in procs], hold_s)
        runner.quit()
    finally:
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return window


# -- report ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """Medians over the repeats of one variant."""

    rps: float
    rps_per_cpu_s: float
    generator_cpu: str  # per process, e.g. "41% + 40%"
    target_cpu_pct: float
    others_cpu_pct: float

    @classmethod
    def of(cls, windows: list[Window]) -> Figures:
        med = statistics.median
        per_process = [
            med(w.generator_cpu_pct[i] for w in windows)
            for i in range(len(windows[0].generator_cpu_pct))
        ]
        return cls(
            rps=med(w.rps for w in windows),
            rps_per_cpu_s=med(w.rps_per_cpu_s for w in windows),
            generator_cpu=" + ".join(f"{c:.0f}%" for c in per_process),
            target_cpu_pct=med(w.target_cpu_pct for w in windows),
            others_cpu_pct=med(w.others_cpu_pct for w in windows),
        )


def _write_readme(text: str) -> None:
    write_section(README, HEADING, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter measuring windows")
    parser.add_argument("--no-readme", action="store_true", help="only print the figures")
    parser.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker:
        host, port = args._worker.rsplit(":", 1)
        return _worker_main(host, int(port))

    import logging

    logging.getLogger("locust").setLevel(logging.ERROR)
    started = time.time()
    # Short windows, many alternating repeats: other work on a shared machine then falls on
    # every variant alike instead of on whichever ran during it.
    hold_s = 3.0
    repeats = 3 if args.quick else 8
    spread_hold_s = 5.0 if args.quick else 7.0
    spread_repeats = 2 if args.quick else 3
    config = TargetConfig(workers=64, service_ms=0.05, distribution="constant", seed=1)
    with start_target_process(config) as target:
        single: dict[str, list[Window]] = {v: [] for v in VARIANTS}
        for _ in range(repeats):
            for variant in VARIANTS:
                single[variant].append(_one_process(target, variant, warmup_s=1.0, hold_s=hold_s))
        spread: dict[int, list[Window]] = {1: [], 2: []}
        for _ in range(spread_repeats):
            for n in (1, 2):
                spread[n].append(_distributed(target, n, warmup_s=2.0, hold_s=spread_hold_s))
    took = time.time() - started
    fig = {v: Figures.of(ws) for v, ws in single.items()}
    one, two = Figures.of(spread[1]), Figures.of(spread[2])
    plain, recorded = fig["plain"], fig["recorder"]
    cost = 1 - recorded.rps / plain.rps
    cost_cpu = 1 - recorded.rps_per_cpu_s / plain.rps_per_cpu_s
    speedup = two.rps / one.rps
    cores = psutil.cpu_count() or 1

    command = "python benchmarks/measurement.py" + (" --quick" if args.quick else "")
    section = [
        HEADING,
        "",
        f"`{command}` ({time.strftime('%Y-%m-%d')}, {cores} CPUs, Python "
        f"{platform.python_version()}, Locust {locust.__version__}; took {took:.0f} s). "
        "Demo target in its own process (64 workers, 0.05 ms constant service); FastHttpUsers "
        f"with no wait fetching /api/page, {USERS_PER_PROCESS} per generator process; requests "
        f"counted by the target; CPU per process with psutil over each window; medians of "
        f"{repeats} alternating {hold_s:g} s windows per variant in part 1, of {spread_repeats} "
        f"{spread_hold_s:g} s windows in part 2. 'Others' is CPU used "
        "meanwhile by processes outside the benchmark (other work on the machine).",
        "",
        "1. Recorder overhead in one Locust process (goal: the recorder costs under 10%).",
        "",
        "| variant | req/s | vs plain | generator CPU | req per CPU-second | vs plain "
        "| target CPU | others |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "plain": "plain FastHttpUser",
        "no-op listener": "+ an empty events.request listener",
        "recorder": "+ breakpoint Recorder.on_request",
    }
    for variant in VARIANTS:
        f = fig[variant]
        section.append(
            f"| {names[variant]} | {f.rps:,.0f} | {f.rps / plain.rps:.0%} | {f.generator_cpu} | "
            f"{f.rps_per_cpu_s:,.0f} | {f.rps_per_cpu_s / plain.rps_per_cpu_s:.0%} | "
            f"{f.target_cpu_pct:.0f}% | {f.others_cpu_pct:.0f}% |"
        )
    per_request_us = (1 / recorded.rps_per_cpu_s - 1 / plain.rps_per_cpu_s) * 1e6
    section += [
        "",
        f"Recorder cost: {cost:.1%} of req/s, {cost_cpu:.1%} of requests per CPU-second "
        f"(about {per_request_us:.0f} us of CPU per request).",
        "",
        "2. Local worker processes under a Locust master in the benchmark process "
        "(goal: 2 workers give at least 1.7x one).",
        "",
        "| workers | req/s | vs 1 worker | worker CPU | req per worker CPU-second "
        "| target CPU | others |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| 1 | {one.rps:,.0f} | 1.00x | {one.generator_cpu} | {one.rps_per_cpu_s:,.0f} | "
        f"{one.target_cpu_pct:.0f}% | {one.others_cpu_pct:.0f}% |",
        f"| 2 | {two.rps:,.0f} | {speedup:.2f}x | {two.generator_cpu} | "
        f"{two.rps_per_cpu_s:,.0f} | {two.target_cpu_pct:.0f}% | {two.others_cpu_pct:.0f}% |",
        "",
    ]
    busy = max(f.others_cpu_pct for f in [*fig.values(), one, two])
    if busy > 30:
        section += [
            f"Other work on the machine used up to {busy:.0f}% of a core during these windows "
            "(the 'others' column; it also holds kernel network time charged to no process): "
            "absolute req/s are lower than on an idle machine, and part 2 had less than "
            f"{cores} cores to share. Requests per CPU-second are the steadier comparison.",
            "",
        ]
    if speedup < 1.7:
        used = 100 * (two.rps / two.rps_per_cpu_s) + two.target_cpu_pct + two.others_cpu_pct
        efficiency = two.rps_per_cpu_s / one.rps_per_cpu_s
        section += [
            f"The 1.7x goal is not met on this machine ({speedup:.2f}x), for want of CPU, not "
            f"because the workers coordinate badly: with 2 workers, the workers, the target and "
            f"other processes used about {used:.0f}% of the {100 * cores}% that {cores} cores "
            "offer (plus the master), so each worker got far less than the single worker's "
            f"core. Per CPU-second a worker of two served {efficiency:.0%} of what the single "
            f"worker did: given a free core each, 2 workers would give about "
            f"{2 * efficiency:.1f}x. DESIGN.md section 12 saw the same on a 2-core machine "
            "against nginx (one process about 5k req/s, two about 8.3k: 1.66x, below 1.7x too). "
            "Checking the goal needs a core per worker and the target's CPU elsewhere (more "
            "cores, or the target on another host).",
            "",
        ]
    if cost >= 0.10:
        section += [
            f"The recorder's cost ({cost:.1%}) is above the 10% goal in this run; compare the "
            "per-CPU-second column, which is steadier when other work shares the machine.",
            "",
        ]
    print("\n".join(section))
    if not args.no_readme:
        _write_readme("\n".join(section))
        print(f"written to {README}")
    return 0 if cost < 0.10 and speedup >= 1.7 else 1


if __name__ == "__main__":
    raise SystemExit(main())
