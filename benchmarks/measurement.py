"""Benchmark of the measuring path: the recorder's cost, 1 vs 2 local worker processes, and the
event loop's lateness while a step boundary's work runs.

Run: `python benchmarks/measurement.py [--quick] [--no-readme] [--boundaries-only]` (about 4.5
minutes; --quick about 2.5; --boundaries-only runs part 3 alone, about 2, and replaces only part
3 in the README). Against the
embedded target on 127.0.0.1 (64 workers, 0.05 ms constant service: the target's own CPU,
printed, is the only limit it has), it prints side by side:

1. Recorder overhead (docs/design.md#performance-targets): requests per second of one Locust
   process without
   and with breakpoint's `Recorder.on_request` listener on `events.request` (the users tag their
   requests with a segment, so every request is really recorded into the HdrHistograms).
   An empty listener is measured too (Locust's own cost of dispatching the event). Variants
   alternate, medians of the repeats. Goal: the recorder costs under 10%.
2. Distributed ceiling: Locust master in this process with 1, then 2, local worker processes
   (the same user class, 50 users per worker), alternating. Goal: 2 workers give at least 1.7x.
3. Step boundaries (issue 12): breakpoint's own users (shop scenario, default profiles, emulated
   networks, so slow downloads are in flight), arrival scheduler and samplers; in measured
   windows, the work of a step boundary done as before issue 12 (on the event loop) and as now
   (store writes in a background thread, the policy in gevent's thread pool, young-generation
   garbage collection). Schedule lag and loop lag p99 of each window, side by side, and the
   pause each piece of work causes.

In parts 1 and 2 requests are counted by the target (/__stats), not by the generator, so every
variant is measured the same way; each process's CPU is sampled with psutil over the window.
FastHttpUsers with no wait fetch /api/page.

The figures are also written to benchmarks/README.md under "## measurement.py" (other sections
of that file are left alone).

`--scaling` (root) measures part 2 again with the target's CPU elsewhere, so that the 1.7x goal
can be judged on a small machine: the target in a network namespace of its own pinned to the
first CPU, the master and its workers in another namespace pinned to the other CPUs, talking
over veth pairs (tests/netns.py). It reports requests per worker CPU-second for 1 and 2 workers,
and writes its own README section, "## measurement.py --scaling".
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
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
from breakpoint.load.recorder import Recorder

README = Path(__file__).with_name("README.md")
ROOT = Path(__file__).resolve().parents[1]
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


# -- 3. step-boundary work while requests are in flight -----------------------------------------

BOUNDARY_RATE = 60.0  # iterations per second: the shop scenario, default profiles, emulated
BOUNDARY_USERS = 1_500  # ready users (thousands of objects for the garbage collector to scan)
BOUNDARY_WINDOW_S = 12.0  # the second boundary ends just before
BOUNDARIES_AT_S = (1.0, 6.0)  # two step boundaries inside each measured window
FINAL_AFTER_S = 3.0  # a step's final record follows its provisional one once it drained
GAP_S = 0.2  # between pieces, so that each piece's pause is seen apart
BOUNDARY_VARIANTS = ("before", "after, 5 ms switch interval", "after")
PIECES = ("store: provisional", "policy: next_step", "gc", "store: final")
FINE_TICK_S = 0.005
FAST_ENDPOINT = "/api/page"


def _append_on_loop(fh: Any, step: Any, *, final: bool) -> None:
    """RunWriter.append before issue 12: encode, write and fsync on the event loop."""
    lines = "".join(
        json.dumps({**rec, "final": final}, separators=(",", ":")) + "\n" for rec in step.records()
    )
    fh.write(lines)
    fh.flush()
    os.fsync(fh.fileno())


def _full_collection() -> int:
    """collect_garbage_now before issue 12: unfreeze, collect everything, freeze."""
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    return found


class _FineLag:
    """How late the event loop wakes a greenlet sleeping 5 ms (breakpoint's sampler: 100 ms)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (woke at, perf_counter; lag ms)
        self.greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            gevent.sleep(FINE_TICK_S)
            t1 = time.perf_counter()
            self.samples.append((t1, max(0.0, (t1 - t0 - FINE_TICK_S) * 1000)))

    def between(self, start: float, end: float) -> list[float]:
        return [lag for at, lag in self.samples if start <= at <= end]


@dataclass(frozen=True)
class BoundaryWindow:
    """One measured window holding two step boundaries, as breakpoint's samplers saw it."""

    schedule_lag_p99_ms: float
    schedule_lag_max_ms: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    fine_lag_max_ms: float
    fast_segment: str  # the segment with the shortest round trip
    fast_p99_ms: float  # p99 latency of its /api/page requests (2 KB: quick) in the window
    in_flight: float  # iterations in flight as the boundaries began (mean)
    pieces: dict[str, list[tuple[float, float]]]  # piece -> (loop pause ms, wall ms) each time
    result_pauses: list[tuple[float, float]]  # recorder.result() between windows (all so far)
    collected: int  # objects the garbage collections found


class _Boundaries:
    """A load like a run's (emulated slow clients, open-model arrivals, 1,500 ready users) and
    the work a step boundary does, done the old way or the new way while requests fly."""

    def __init__(self, target: TargetProcess, out: Path) -> None:
        from breakpoint.analysis.search import Search
        from breakpoint.load import local, process
        from breakpoint.load import settings as load_settings
        from breakpoint.load.arrivals import ArrivalScheduler
        from breakpoint.load.controller import Controller
        from breakpoint.load.guard import HostGuard
        from breakpoint.load.writer import RunWriter
        from breakpoint.plan.profiles import default_profile_names, resolve_profiles
        from breakpoint.plan.steps import Plan
        from breakpoint.runs.store import load_run
        from breakpoint.sim.runbuilder import RunSpec, build_run

        profiles = tuple(resolve_profiles(default_profile_names()))
        settings = load_settings.RunSettings(
            scenario=ROOT / "scenarios" / "shop.py",
            host=target.url,
            plan=Plan(model="open", baseline=BOUNDARY_RATE),
            profiles=profiles,
            label="boundaries",
            out_dir=out,
        )
        seg = load_settings.segments_of(settings)
        self.fast = min(profiles, key=lambda p: p.network.rtt_ms).name
        self.recorder = Recorder(seg.names)
        self.scheduler = ArrivalScheduler(
            seg.shares, seed=1, on_issue=self.recorder.iteration_offered
        )
        classes = load_settings.user_classes(
            settings, seg, self.recorder, self.scheduler, HostGuard(target.url, ())
        )
        self.env = Environment(user_classes=classes, host=target.url)
        self.env.events.request.add_listener(self.recorder.on_request)
        self.runner = self.env.create_local_runner()
        process.quiet_locust()
        # What the search decides on after 10 steps of a 6-segment run (a curve fit per segment).
        built = load_run(build_run(out, RunSpec(steps=12, profiles=profiles), writer=RunWriter))
        plan = Plan.from_dict(dict(built.info["plan"]))
        self.search = Search(plan, {p.name: p.slo for p in profiles})
        self.done = built.steps[:10]
        self.controller = Controller(
            plan=plan,
            policy=self.search,
            source=None,  # type: ignore[arg-type]  # only its policy call is used
            shares=seg.shares,
            busy_s=seg.busy,
            pool_weights=seg.pool_weights,
            on_step_closed=lambda result: None,
        )
        self.controller.done = list(self.done)
        self.writer = RunWriter(out, "after", {})
        self.old_file = open(out / "before-steps.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self.collect_now = local.collect_garbage_now
        self.samplers: list[Any] = []
        self.fine: _FineLag | None = None
        self.index = 0
        self.step: Any = None  # the step whose records the boundaries write
        self.result_pauses: list[tuple[float, float]] = []  # recorder.result(), between windows

    def start(self) -> None:
        from breakpoint.load import samplers

        self.collect_now(True)
        self.samplers = samplers.start_samplers(self.recorder, self.scheduler)
        self.fine = _FineLag()
        self.recorder.open_step(self.index, 1.0, BOUNDARY_RATE, "ramp", 0.0, start=time.time())
        self.runner.start(BOUNDARY_USERS, spawn_rate=BOUNDARY_USERS)
        self.scheduler.set_rate(BOUNDARY_RATE, self.index)
        gevent.sleep(8.0)  # users spawned, slow downloads in flight
        self.step = self.recorder.result(self.index, final=False)

    def stop(self) -> None:
        self.scheduler.stop()
        self.runner.quit()
        for g in self.samplers:
            g.kill(block=False)
        if self.fine is not None:
            self.fine.greenlet.kill(block=False)
        self.writer.close()
        self.old_file.close()

    def window(self, variant: str) -> BoundaryWindow:
        from breakpoint.load import controller as shape

        assert self.fine is not None
        self.recorder.close_step(self.index)
        self.recorder.forget(self.index)
        self.index += 1
        index = self.index
        start = time.time()
        self.recorder.open_step(index, 1.0, BOUNDARY_RATE, "ramp", 0.0, start=start)
        self.scheduler.set_rate(BOUNDARY_RATE, index)
        began = time.perf_counter()
        pieces: dict[str, list[tuple[float, float]]] = {p: [] for p in PIECES}
        in_flight: list[int] = []
        collected = [0]
        saved_interval = shape.OFF_LOOP_SWITCH_INTERVAL_S
        if variant == "after, 5 ms switch interval":
            shape.OFF_LOOP_SWITCH_INTERVAL_S = 0.005
        try:
            workers = [
                gevent.spawn_later(at, self._boundary, variant, index, pieces, in_flight, collected)
                for at in BOUNDARIES_AT_S
            ]
            gevent.sleep(BOUNDARY_WINDOW_S)
            gevent.joinall(workers, raise_error=True)
        finally:
            shape.OFF_LOOP_SWITCH_INTERVAL_S = saved_interval
        ended = time.perf_counter()
        self.recorder.close_step(index)
        result = self.recorder.result(index, final=False)
        # What LocalSteps.close and _live compute (not changed by issue 12), timed apart.
        pauses = {"result": self.result_pauses}
        for _ in range(2):
            self.step = self._piece(
                pauses, "result", lambda: self.recorder.result(index, final=False)
            )
        health = self.recorder.health_of(index)
        loop = [v for k, v in health if k == "loop_lag_ms"]
        sched = [v for k, v in health if k == "schedule_lag_ms"]
        fine = sorted(self.fine.between(began, ended))
        return BoundaryWindow(
            schedule_lag_p99_ms=result.generator.schedule_lag_p99_ms,
            schedule_lag_max_ms=max(sched, default=0.0),
            loop_lag_p99_ms=result.generator.loop_lag_p99_ms,
            loop_lag_max_ms=max(loop, default=0.0),
            fine_lag_max_ms=fine[-1] if fine else 0.0,
            fast_segment=self.fast,
            fast_p99_ms=result.segments[self.fast].endpoints[FAST_ENDPOINT].p99_ms or 0.0,
            in_flight=statistics.mean(in_flight) if in_flight else 0.0,
            pieces=pieces,
            result_pauses=self.result_pauses,
            collected=collected[0],
        )

    def _boundary(
        self,
        variant: str,
        index: int,
        pieces: dict[str, list[tuple[float, float]]],
        in_flight: list[int],
        collected: list[int],
    ) -> None:
        """What a step boundary does, in the order load/local.py and load/controller.py do it."""
        before = variant == "before"
        in_flight.append(self.recorder.in_flight(index))
        step = self.step

        def append(final: bool) -> None:
            if before:
                _append_on_loop(self.old_file, step, final=final)
            else:
                self.writer.append(step, final=final)

        def policy() -> None:
            if before:
                self.search.next_step(self.done)
            else:
                self.controller._next_step()  # the controller's own call: off the loop

        def collect() -> None:
            if before:
                collected[0] += _full_collection()
            else:
                self.collect_now()

        self._piece(pieces, "store: provisional", lambda: append(False))
        self._piece(pieces, "policy: next_step", policy)
        self._piece(pieces, "gc", collect)
        gevent.sleep(FINAL_AFTER_S)
        self._piece(pieces, "store: final", lambda: append(True))

    def _piece(self, pieces: dict[str, list[tuple[float, float]]], name: str, work: Any) -> Any:
        assert self.fine is not None
        gevent.sleep(GAP_S)
        t0 = time.perf_counter()
        value = work()
        t1 = time.perf_counter()
        gevent.sleep(GAP_S)
        # The sample that spans a pause wakes just after it: look a little past the end.
        lags = self.fine.between(t0, t1 + GAP_S / 2)
        pieces[name].append((max(lags, default=0.0), (t1 - t0) * 1000))
        return value


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


def _boundary_windows(target: TargetProcess, repeats: int) -> dict[str, list[BoundaryWindow]]:
    windows: dict[str, list[BoundaryWindow]] = {v: [] for v in BOUNDARY_VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        bench = _Boundaries(target, Path(tmp))
        bench.start()
        try:
            for _ in range(repeats):
                for variant in BOUNDARY_VARIANTS:  # alternating: other work falls on each alike
                    windows[variant].append(bench.window(variant))
        finally:
            bench.stop()
    return windows


PART3 = "3. Step-boundary work"


def _boundary_section(
    windows: dict[str, list[BoundaryWindow]], took: float, command: str | None = None
) -> list[str]:
    """Part 3's text; `command` when it ran alone (its own command line and date)."""
    med = statistics.median
    repeats = len(windows["before"])

    def ms(x: float) -> str:
        return f"{x:,.1f}" if x < 10 else f"{x:,.0f}"

    section = [
        f"{PART3} while requests are in flight (issue 12: nothing may block the event loop "
        "during a measured window).",
        "",
        (
            f"`{command}` ({time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
            f"Locust {locust.__version__}; took {took:.0f} s). Against the same demo target, in "
            "the benchmark process"
            if command
            else f"In the benchmark process against the same target ({took:.0f} s)"
        )
        + ": the shop scenario with the "
        f"default profiles, networks emulated (a 3G user's 200 KB download lasts about 5 s), "
        f"{BOUNDARY_RATE:g} arrivals/s on the open-model schedule, {BOUNDARY_USERS:,} ready "
        f"users. Each {BOUNDARY_WINDOW_S:g} s window holds two step boundaries (at "
        f"{' and '.join(f'{t:g}' for t in BOUNDARIES_AT_S)} s), each doing what a boundary does "
        "in load/local.py and load/controller.py and this change touches: the step's provisional "
        "record in "
        "the store, the search's next step (Search.next_step after 10 steps of a 6-segment "
        "run: curve fits), the garbage collection as a step opens, and "
        f"{FINAL_AFTER_S:g} s later the final record ({GAP_S:g} s between pieces, so each "
        "piece's pause is seen apart). 'before' "
        "does it as the code did before issue 12, on the event loop: RunWriter.append encoding, "
        "writing and fsync'ing; Search.next_step; gc.unfreeze + gc.collect + gc.freeze. 'after' "
        "calls the new code: RunWriter's writer thread; Controller._next_step, which runs the "
        "policy in gevent's native thread pool with the switch interval lowered to "
        "0.1 ms meanwhile (the 5 ms variant keeps Python's default); collect_garbage_now, "
        "which collects the young generations and freezes everything. Schedule lag "
        "(arrivals.py) and "
        "loop lag (load/samplers.py, every 100 ms) are breakpoint's own samplers over "
        "the window, p99 as a step reports them; a 5 ms loop-lag sampler is added, and the p99 "
        f"latency of {FAST_ENDPOINT} (2 KB) in the segment with the shortest round trip (quick "
        f"requests: a pause shows in them). Medians of {repeats} alternating windows per "
        "variant.",
        "",
        "| variant | schedule lag p99 | max | loop lag p99 | max | 5 ms sampler: max "
        f"| {windows['before'][0].fast_segment} {FAST_ENDPOINT} p99 | iterations in flight |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in BOUNDARY_VARIANTS:
        ws = windows[variant]
        section.append(
            f"| {variant} | {ms(med(w.schedule_lag_p99_ms for w in ws))} ms "
            f"| {ms(med(w.schedule_lag_max_ms for w in ws))} ms "
            f"| {ms(med(w.loop_lag_p99_ms for w in ws))} ms "
            f"| {ms(med(w.loop_lag_max_ms for w in ws))} ms "
            f"| {ms(med(w.fine_lag_max_ms for w in ws))} ms "
            f"| {ms(med(w.fast_p99_ms for w in ws))} ms "
            f"| {med(w.in_flight for w in ws):.0f} |"
        )

    def piece(variant: str, name: str, which: int) -> float:
        return med(x[which] for w in windows[variant] for x in w.pieces[name])

    section += [
        "",
        "Each piece on its own: how late the event loop was during it (the 5 ms sampler's "
        "worst) and how long it took, medians over the boundaries.",
        "",
        "| piece | pause before | pause after, 5 ms switch interval | pause after "
        "| took before | took after |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    names = {
        "store: provisional": "store: the provisional record",
        "policy: next_step": "policy: next_step",
        "gc": "garbage collection as the step opens",
        "store: final": "store: the final record",
    }
    for name in PIECES:
        section.append(
            f"| {names[name]} | {ms(piece('before', name, 0))} ms "
            f"| {ms(piece(BOUNDARY_VARIANTS[1], name, 0))} ms | {ms(piece('after', name, 0))} ms "
            f"| {ms(piece('before', name, 1))} ms | {ms(piece('after', name, 1))} ms |"
        )
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    result = windows["before"][0].result_pauses  # shared: timed between all windows
    section += [
        "",
        "What stays on the loop, and is left out of the windows above: recorder.result() of "
        "the step, which LocalSteps.close computes as each step closes and _live once a second "
        f"(not changed here). Timed apart between the windows ({len(result)} times): pause "
        f"median {ms(med(x[0] for x in result))} ms, worst {ms(max(x[0] for x in result))} ms. "
        "Its cost varies from run to run with numpy's multithreaded BLAS, which wakes its "
        "threads for a dot product per histogram (results.mean_us); OPENBLAS_NUM_THREADS=1 set "
        f"before the run takes that part away. OPENBLAS_NUM_THREADS in this run: {blas}.",
    ]
    found = sum(w.collected for w in windows["before"])
    passes = sum(len(w.pieces["gc"]) for w in windows["before"])
    section += [
        "",
        f"The old full collections ({passes} of them, everything unfrozen) found {found:,} "
        "unreachable objects in all: about the most that freezing for the whole run can leave "
        "uncollected (a run's first step still collects everything, before any request).",
        "",
    ]
    return section


# -- 2b. scaling with the target's CPU elsewhere (--scaling; root, network namespaces) ------------

SCALING_HEADING = "## measurement.py --scaling"


class _TargetElsewhere:
    """The target as seen from another namespace: /__stats over HTTP, its process by pid."""

    def __init__(self, url: str, pid: int) -> None:
        self.url = url
        self.process = psutil.Process(pid)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/__stats", timeout=5) as response:
            stats: dict[str, Any] = json.load(response)
        return stats


def _scaling_inside(url: str, pid: int, repeats: int, hold_s: float) -> int:
    """In the generators' namespace: 1 and 2 workers, alternating; the windows as JSON."""
    target: Any = _TargetElsewhere(url, pid)
    spread: dict[str, list[dict[str, Any]]] = {"1": [], "2": []}
    for _ in range(repeats):
        for n in (1, 2):
            window = _distributed(target, n, warmup_s=2.0, hold_s=hold_s)
            spread[str(n)].append(dataclasses.asdict(window))
    print(json.dumps(spread))
    return 0


def _scaling(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    from netns import lab, why_not_available

    reason = why_not_available()
    if reason is not None:
        print(f"--scaling needs network namespaces: {reason}")
        return 2
    started = time.time()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print("--scaling needs at least 2 CPUs: one for the target, the rest for the generators")
        return 2
    target_cpu, generator_cpus = str(cpus[0]), ",".join(str(c) for c in cpus[1:])
    repeats, hold_s = (2, 5.0) if args.quick else (4, 7.0)
    with lab("target", "generators") as net:
        ip = net.address["target"]
        target = subprocess.Popen(
            net.argv("target", [
                sys.executable, "-m", "breakpoint.demo.target", "--host", ip, "--port", "8080",
                "--workers", "64", "--service-ms", "0.05", "--distribution", "constant",
            ], cpus=target_cpu),
            stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert target.stdout is not None
            if not any("listening on" in line for line in target.stdout):
                raise RuntimeError("the target did not start")
            inside = subprocess.run(
                net.argv("generators", [
                    sys.executable, __file__, "--_scaling-inside",
                    f"http://{ip}:8080,{target.pid},{repeats},{hold_s}",
                ], cpus=generator_cpus),
                capture_output=True, text=True, check=True,
            )  # fmt: skip
        finally:
            target.terminate()
            target.wait(timeout=10)
    spread = json.loads(inside.stdout.strip().splitlines()[-1])
    windows = {
        n: [Window(**{**w, "generator_cpu_pct": tuple(w["generator_cpu_pct"])}) for w in ws]
        for n, ws in spread.items()
    }
    one, two = Figures.of(windows["1"]), Figures.of(windows["2"])
    efficiency = two.rps_per_cpu_s / one.rps_per_cpu_s
    shared = len(cpus) - 1 < 2
    command = "sudo python benchmarks/measurement.py --scaling" + (" --quick" if args.quick else "")
    section = [
        SCALING_HEADING,
        "",
        f"`{command}` ({time.strftime('%Y-%m-%d')}, {len(cpus)} CPUs; took "
        f"{time.time() - started:.0f} s). The demo target (64 workers, 0.05 ms constant service) "
        f"in a network namespace of its own pinned to CPU {target_cpu}; the Locust master and "
        f"its local workers in another namespace pinned to CPU(s) {generator_cpus}, over veth "
        f"pairs and a bridge. FastHttpUsers with no wait, {USERS_PER_PROCESS} per worker; "
        f"medians of {repeats} alternating {hold_s:g} s windows.",
        "",
        "| workers | req/s | worker CPU | req per worker CPU-second | vs 1 worker | target CPU |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| 1 | {one.rps:,.0f} | {one.generator_cpu} | {one.rps_per_cpu_s:,.0f} | 1.00x | "
        f"{one.target_cpu_pct:.0f}% |",
        f"| 2 | {two.rps:,.0f} | {two.generator_cpu} | {two.rps_per_cpu_s:,.0f} | "
        f"{efficiency:.2f}x per CPU-second | {two.target_cpu_pct:.0f}% |",
        "",
        f"Per CPU-second a worker of two served {efficiency:.0%} of what a single worker did, so "
        f"given a core each, 2 workers would give about {2 * efficiency:.2f}x one "
        f"(goal: 1.7x; {'met' if 2 * efficiency >= 1.7 else 'not met'}).",
    ]
    if shared:
        section.append(
            "Limit of this machine: the two workers share one CPU, so their req/s together "
            "cannot exceed one worker's; the per-CPU-second figure is what judges the cost of "
            "coordinating them, and the projected speedup assumes a free core per worker."
        )
    print("\n".join(section))
    if not args.no_readme:
        write_section(README, SCALING_HEADING, "\n".join(section))
        print(f"written to {README}")
    return 0


def _write_readme(text: str) -> None:
    write_section(README, HEADING, text)


def _write_part3(part3: list[str]) -> None:
    """Replace part 3 of the section (or add it), keeping parts 1 and 2 as they were measured."""
    lines = README.read_text(encoding="utf-8").splitlines() if README.exists() else []
    if HEADING not in (line.strip() for line in lines):
        _write_readme("\n".join([HEADING, "", *part3]))
        return
    start = next(i for i, line in enumerate(lines) if line.strip() == HEADING)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    body = lines[start:end]
    cut = next((i for i, line in enumerate(body) if line.startswith(PART3)), len(body))
    kept = "\n".join(body[:cut]).rstrip("\n").splitlines()
    _write_readme("\n".join([*kept, "", *part3]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter measuring windows")
    parser.add_argument("--no-readme", action="store_true", help="only print the figures")
    parser.add_argument(
        "--boundaries-only",
        action="store_true",
        help="only part 3 (step-boundary work); the README keeps parts 1 and 2 as they are",
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="1 vs 2 workers with the target pinned to its own CPU in a network namespace (root)",
    )
    parser.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_scaling-inside", dest="scaling_inside", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker:
        host, port = args._worker.rsplit(":", 1)
        return _worker_main(host, int(port))
    if args.scaling_inside:
        url, pid, repeats, hold_s = args.scaling_inside.split(",")
        return _scaling_inside(url, int(pid), int(repeats), float(hold_s))
    if args.scaling:
        return _scaling(args)

    import logging

    logging.getLogger("locust").setLevel(logging.ERROR)
    started = time.time()
    # Short windows, many alternating repeats: other work on a shared machine then falls on
    # every variant alike instead of on whichever ran during it.
    hold_s = 3.0
    repeats = 3 if args.quick else 8
    spread_hold_s = 5.0 if args.quick else 7.0
    spread_repeats = 2 if args.quick else 3
    boundary_repeats = 2 if args.quick else 3
    config = TargetConfig(workers=64, service_ms=0.05, distribution="constant", seed=1)
    if args.boundaries_only:
        with start_target_process(config) as target:
            boundaries = _boundary_windows(target, boundary_repeats)
        command = "python benchmarks/measurement.py --boundaries-only" + (
            " --quick" if args.quick else ""
        )
        part3 = _boundary_section(boundaries, time.time() - started, command)
        print("\n".join(part3))
        if not args.no_readme:
            _write_part3(part3)
            print(f"written to {README} (part 3 of {HEADING!r}; parts 1 and 2 kept)")
        return 0
    with start_target_process(config) as target:
        single: dict[str, list[Window]] = {v: [] for v in VARIANTS}
        for _ in range(repeats):
            for variant in VARIANTS:
                single[variant].append(_one_process(target, variant, warmup_s=1.0, hold_s=hold_s))
        spread: dict[int, list[Window]] = {1: [], 2: []}
        for _ in range(spread_repeats):
            for n in (1, 2):
                spread[n].append(_distributed(target, n, warmup_s=2.0, hold_s=spread_hold_s))
        boundaries_started = time.time()
        boundaries = _boundary_windows(target, boundary_repeats)
        boundaries_took = time.time() - boundaries_started
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
            f"{2 * efficiency:.1f}x. docs/design.md#field-notes saw the same on a 2-core machine "
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
    section += _boundary_section(boundaries, boundaries_took)
    print("\n".join(section))
    if not args.no_readme:
        _write_readme("\n".join(section))
        print(f"written to {README}")
    return 0 if cost < 0.10 and speedup >= 1.7 else 1


if __name__ == "__main__":
    raise SystemExit(main())
