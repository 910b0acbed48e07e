"""Benchmark of the network/device emulation (DESIGN.md sections 4 and 10).

Run: `python benchmarks/emulation.py [--quick] [--no-readme]` (about 2.5 minutes; --quick halves
the measuring windows). Against the demo target on 127.0.0.1, in this one process, it prints:

1. Overhead: plain FastHttpUser requests per second vs the same users with the emulation
   installed at zero delays (goal: at least 85%), and with the paced (streamed) path forced
   by a finite but huge bandwidth.
2. Fidelity and cost: 1000 and 2000 concurrent android-lowend-3g users (think time 1-3 s, random
   start phase) fetching the 2 KB page: the median and p95 error of each request's measured time
   against the model (goal: median within 3%), and the generator's CPU (psutil, sampled each
   second; goal: under 80% of a core).

The figures are also written to benchmarks/README.md under "## emulation.py" (other sections of
that file are left alone).
"""

from __future__ import annotations

import argparse
import platform
import random
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import gevent
import psutil
from _readme import write_section
from locust import FastHttpUser, between, constant, task
from locust.env import Environment

from breakpoint import emulate, netmodel
from breakpoint.demo.target import TargetConfig, TargetProcess, start_target_process
from breakpoint.profiles import Profile, builtin_profiles

README = Path(__file__).with_name("README.md")
HEADING = "## emulation.py"


class _Collector:
    """An events.request listener that keeps what the figures need, timestamped."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.samples: list[tuple[float, float, dict[str, Any], int]] = []
        self.keep_samples = False
        self.errors = 0

    def __call__(
        self,
        response_time: float = 0.0,
        context: Any = None,
        exception: Any = None,
        response_length: int = 0,
        **_: Any,
    ) -> None:
        now = time.perf_counter()
        self.times.append(now)
        if exception is not None:
            self.errors += 1
        if self.keep_samples:
            self.samples.append((now, response_time, context or {}, response_length))


def _user_class(host: str, profile: Profile | None, *, think: Any) -> type[FastHttpUser]:
    class Bench(FastHttpUser):
        abstract = False
        wait_time = think

        def on_start(self) -> None:
            if profile is not None:
                emulate.install(self, profile, rng=random.Random(id(self)))
            low, high = getattr(think, "_bp_phase", (0.0, 0.0))
            if high:
                # Start at a random phase so users do not march in lockstep (DESIGN.md §12).
                gevent.sleep(random.uniform(low, high))

        @task
        def page(self) -> None:
            self.client.get("/api/page")

    Bench.host = host
    return Bench


def _cpu_sampler(proc: psutil.Process, out: list[float], stop: list[bool]) -> None:
    proc.cpu_percent(None)
    while not stop[0]:
        gevent.sleep(1.0)
        out.append(proc.cpu_percent(None))


def _run(
    user_class: type[FastHttpUser],
    users: int,
    *,
    spawn_rate: float,
    settle_s: float,
    measure_s: float,
    keep_samples: bool,
) -> tuple[_Collector, float, float, list[float], float]:
    """Run users; return the collector, the measuring window (start, end), CPU % samples and
    the CPU seconds this process used in the window."""
    env = Environment(user_classes=[user_class])
    collector = _Collector()
    env.events.request.add_listener(collector)
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=spawn_rate)
    while runner.user_count < users:
        gevent.sleep(0.1)
    gevent.sleep(settle_s)
    collector.keep_samples = keep_samples
    cpu: list[float] = []
    stop = [False]
    proc = psutil.Process()
    sampler = gevent.spawn(_cpu_sampler, proc, cpu, stop)
    cpu_before = sum(proc.cpu_times()[:2])
    start = time.perf_counter()
    gevent.sleep(measure_s)
    end = time.perf_counter()
    cpu_s = sum(proc.cpu_times()[:2]) - cpu_before
    collector.keep_samples = False
    stop[0] = True
    sampler.join()
    runner.quit()
    return collector, start, end, cpu, cpu_s


def _rate(collector: _Collector, start: float, end: float) -> float:
    return sum(1 for t in collector.times if start <= t <= end) / (end - start)


def _overhead(
    target: TargetProcess, measure_s: float, rounds: int
) -> list[tuple[str, float, float]]:
    """(variant, median req/s, median requests per CPU-second of this process) per variant."""
    base = builtin_profiles()["desktop-broadband"]
    zero = base.without_emulation()
    # A finite bandwidth forces the streamed, paced read; 1 Tbit/s makes its sleeps zero.
    streamed = replace(zero, network=replace(zero.network, down_kbps=1e9, up_kbps=1e9))
    variants: list[tuple[str, Profile | None]] = [
        ("plain FastHttpUser", None),
        ("emulation, zero delays", zero),
        ("emulation, zero delays, streamed read", streamed),
    ]
    rates: dict[str, list[float]] = {label: [] for label, _ in variants}
    per_cpu: dict[str, list[float]] = {label: [] for label, _ in variants}
    # Alternate short runs and take medians, so drift and other work on the machine hit every
    # variant alike.
    for _ in range(rounds):
        for label, profile in variants:
            cls = _user_class(target.url, profile, think=constant(0))
            c, start, end, _, cpu_s = _run(
                cls, 50, spawn_rate=50, settle_s=1.0, measure_s=measure_s, keep_samples=False
            )
            rate = _rate(c, start, end)
            rates[label].append(rate)
            per_cpu[label].append(rate * (end - start) / cpu_s)
    return [
        (label, statistics.median(rates[label]), statistics.median(per_cpu[label]))
        for label, _ in variants
    ]


def _fidelity(target: TargetProcess, users: int, measure_s: float) -> dict[str, float]:
    profile = builtin_profiles()["android-lowend-3g"]
    think = between(1, 3)
    think._bp_phase = (0.0, 3.0)  # type: ignore[attr-defined]
    cls = _user_class(target.url, profile, think=think)
    c, start, end, cpu, _ = _run(
        cls, users, spawn_rate=500, settle_s=4.0, measure_s=measure_s, keep_samples=True
    )
    errors_total: list[float] = []
    errors_net: list[float] = []
    for _, response_time, ctx, length in c.samples:
        if not ctx.get("bp_emulated") or "bp_request_bytes" not in ctx:
            continue
        model = netmodel.predict(
            profile,
            ctx["bp_request_bytes"],
            ctx["bp_response_bytes"],
            new_connection=ctx["bp_new_connection"],
            body_bytes=length,
        ).total_ms
        errors_total.append(abs(response_time / model - 1))
        server = response_time - ctx["bp_network_ms"] - ctx["bp_device_ms"]
        errors_net.append(abs((response_time - server) / model - 1))
    errors_total.sort()
    errors_net.sort()
    steady = cpu[1:] or cpu
    return {
        "users": users,
        "requests": len(errors_total),
        "rps": _rate(c, start, end),
        "errors": c.errors,
        "median_err": statistics.median(errors_total),
        "p95_err": errors_total[int(0.95 * (len(errors_total) - 1))],
        "median_err_net": statistics.median(errors_net),
        "cpu_mean": statistics.mean(steady),
        "cpu_max": max(steady),
    }


def _write_readme(text: str) -> None:
    write_section(README, HEADING, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter measuring windows")
    parser.add_argument("--no-readme", action="store_true", help="only print the figures")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 20_000)), hard))
    overhead_s, rounds = (3.0, 2) if args.quick else (4.0, 4)
    fidelity_s = 10.0 if args.quick else 20.0
    began = time.monotonic()

    config = TargetConfig(workers=64, service_ms=0.1, distribution="constant", seed=1)
    with start_target_process(config) as target:
        rates = _overhead(target, overhead_s, rounds)
        fidelity = [_fidelity(target, n, fidelity_s) for n in (1000, 2000)]
    took = time.monotonic() - began

    plain, plain_cpu = rates[0][1], rates[0][2]
    lines = [
        HEADING,
        "",
        f"`python benchmarks/emulation.py{' --quick' if args.quick else ''}` "
        f"({time.strftime('%Y-%m-%d')}, {psutil.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, Locust {_locust_version()}; took {took:.0f} s). "
        "Demo target in its own process, constant 0.1 ms service time.",
        "",
        "Overhead at zero delays (50 FastHttpUsers, no wait, GET /api/page, "
        f"{overhead_s:g} s x {rounds} alternating runs each, medians; goal >= 85% of plain). "
        "Requests per CPU-second of the generator is steadier when other work shares the "
        "machine.",
        "",
        "| variant | req/s | vs plain | req per CPU-second | vs plain |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {label} | {rate:,.0f} | {rate / plain:.0%} | {cpu:,.0f} | {cpu / plain_cpu:.0%} |"
        for label, rate, cpu in rates
    ]
    lines += [
        "",
        "android-lowend-3g users (400 ms RTT, 400/400 kbit/s, CPU 6x) fetching the 2 KB page with "
        f"1-3 s think time, random start phase, {fidelity_s:g} s measured. Error = |measured / "
        "model - 1| per request; measured includes the server's real time (the model does not), "
        "'net' subtracts it. Goal: median within 3%, generator CPU under 80%.",
        "",
        "| users | requests | req/s | median error | p95 error | median error (net) "
        "| errors | generator CPU mean / max |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {f['users']:,} | {f['requests']:,} | {f['rps']:,.0f} | {f['median_err']:.2%} | "
        f"{f['p95_err']:.2%} | {f['median_err_net']:.2%} | {f['errors']} | "
        f"{f['cpu_mean']:.0f}% / {f['cpu_max']:.0f}% |"
        for f in fidelity
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_readme:
        _write_readme(text)
        print(f"written to {README}")
    ok = rates[1][1] >= 0.85 * plain and all(f["median_err"] <= 0.03 for f in fidelity)
    return 0 if ok else 1


def _locust_version() -> str:
    from importlib.metadata import version

    return version("locust")


if __name__ == "__main__":
    sys.exit(main())
