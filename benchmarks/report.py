"""Benchmark of analysis and report rendering: under 3 s for 20 steps x 7 segments.

The goal is in docs/design.md#performance-targets.

Run: `python benchmarks/report.py [--steps 20] [--segments 7] [--repeat 3] [--no-readme]`.
It builds a stored run without load (breakpoint/sim/runbuilder.py: M/M/c latencies, real
HdrHistograms, refinement repeats, errors), then times what `breakpoint report RUN_DIR` does,
phase by phase: reading the run, the analysis (fits and bootstrap), the summaries, the charts
(matplotlib SVG) and the template (jinja2), and publish() end to end. The first round runs cold
(imports, font cache); the figures are the median of the rounds after it. Imports are timed
apart: they are paid once per process.

The figures are also written to benchmarks/README.md under "## report.py" (other sections of
that file are left alone).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _readme import write_section

README = Path(__file__).with_name("README.md")
HEADING = "## report.py"
GOAL_S = 3.0


def _import_time() -> float:
    began = time.perf_counter()
    from breakpoint.output import publish  # noqa: F401
    from breakpoint.sim import runbuilder  # noqa: F401  (the builder needs what publish needs)

    return time.perf_counter() - began


class _Clock:
    """Adds up the time spent in the chart functions of report/plots.py."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - began

        return timed


def _round(run_dir: Path) -> dict[str, float]:
    """One report of the run, timed phase by phase as publish() does it, then publish() itself."""
    from breakpoint.analysis.breaks import analyse
    from breakpoint.output.digest import markdown
    from breakpoint.output.publish import publish
    from breakpoint.output.report import plots, render
    from breakpoint.plan.profiles import profile_from_dict
    from breakpoint.plan.steps import Plan
    from breakpoint.runs.store import load_run, write_json
    from breakpoint.runs.summary import build_summary

    times: dict[str, float] = {}
    t = time.perf_counter()
    stored = load_run(run_dir)
    plan = Plan.from_dict(dict(stored.info["plan"]))
    profiles = [profile_from_dict(d) for d in stored.info["profiles"]]
    times["load"] = time.perf_counter() - t

    t = time.perf_counter()
    analysis = analyse(stored.steps, profiles, plan, seed=plan.seed)
    times["analyse"] = time.perf_counter() - t

    t = time.perf_counter()
    summary = build_summary(
        stored.info, stored.steps, analysis, plan, profiles, store_warnings=stored.warnings
    )
    write_json(run_dir / "bench-summary.json", summary)
    markdown(summary)
    times["summaries"] = time.perf_counter() - t

    clock = _Clock()
    names = ("ladder", "curve", "curve_legend", "decomposition", "throughput")
    originals = {name: getattr(plots, name) for name in names}
    for name, fn in originals.items():
        setattr(plots, name, clock.wrap(fn))
    try:
        t = time.perf_counter()
        html = render.render_html(
            info=stored.info,
            summary=summary,
            steps=stored.steps,
            analysis=analysis,
            profiles=profiles,
            max_multiplier=plan.max_multiplier,
        )
        (run_dir / "bench-report.html").write_text(html, encoding="utf-8")
        rendered = time.perf_counter() - t
    finally:
        for name, fn in originals.items():
            setattr(plots, name, fn)
    times["plots"] = clock.seconds
    times["template"] = rendered - clock.seconds
    times["phases"] = sum(times[k] for k in ("load", "analyse", "summaries", "plots", "template"))

    t = time.perf_counter()
    report = publish(run_dir)
    times["publish"] = time.perf_counter() - t
    times["size_kb"] = report.stat().st_size / 1024
    return times


def _write_readme(text: str) -> None:
    write_section(README, HEADING, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--segments", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds after the cold one")
    parser.add_argument("--no-readme", action="store_true", help="only print the figures")
    args = parser.parse_args(argv)

    imports = _import_time()
    from breakpoint.load.writer import RunWriter
    from breakpoint.sim.runbuilder import RunSpec, build_run

    with tempfile.TemporaryDirectory(prefix="bp-bench-report-") as tmp:
        t = time.perf_counter()
        spec = RunSpec(steps=args.steps, segments=args.segments)
        run_dir = build_run(Path(tmp), spec, writer=RunWriter)
        built = time.perf_counter() - t
        cold = _round(run_dir)
        warm = [_round(run_dir) for _ in range(max(1, args.repeat))]
    load = os.getloadavg()[0]

    keys = ("load", "analyse", "summaries", "plots", "template", "phases", "publish")
    median = {k: statistics.median(r[k] for r in warm) for k in keys}
    rows = [
        ("read the run (load_run)", "load"),
        ("analyse (fits, bootstrap, diagnosis)", "analyse"),
        ("summary.json + summary.md", "summaries"),
        ("plots (matplotlib SVG)", "plots"),
        ("template (jinja2) and write", "template"),
        ("**sum of phases**", "phases"),
        ("**publish() end to end**", "publish"),
    ]
    verdict = "meets" if median["publish"] < GOAL_S else "misses"
    lines = [
        HEADING,
        "",
        f"`python benchmarks/report.py --steps {args.steps} --segments {args.segments} "
        f"--repeat {args.repeat}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average {load:.1f} while it ran). A run of "
        f"{args.steps} steps x {args.segments} segments built without load by "
        f"breakpoint/sim/runbuilder.py (built in {built:.1f} s); "
        f"report {warm[-1]['size_kb']:,.0f} KB.",
        "",
        f"Goal: analysis and report under {GOAL_S:g} s. Median of {len(warm)} warm rounds "
        f"({verdict} the goal); the cold first round in the process also pays font and lazy "
        f"imports. Importing breakpoint.output.publish (numpy, scipy, matplotlib, jinja2) costs "
        f"{imports:.2f} s once per process.",
        "",
        "| phase | warm median (s) | cold first round (s) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {label} | {median[k]:.2f} | {cold[k]:.2f} |" for label, k in rows]
    share = median["analyse"] / median["phases"] if median["phases"] else 0.0
    lines += [
        "",
        f"The analysis is {share:.0%} of the time: its bootstrap refits the shared open-model "
        "curve (2 x segments + 1 parameters) 400 times.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_readme:
        _write_readme(text)
        print(f"written to {README}")
    return 0 if median["publish"] < GOAL_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
