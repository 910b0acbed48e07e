"""Real A/A runs: the same release measured N times, then `compare` on every split of them.

Starts the embedded target (8 workers x 20 ms, exponential) on 127.0.0.1, runs
`breakpoint run scenarios/ground_truth.py` N times against it (one segment without emulation,
p95 SLO 250 ms, 1X = 80 req/s: the break is 9.68X x 40/80 = 4.84X by Erlang C), and reports:
the spread of the breaking point between runs against the runs' own stated 95% intervals, the
verdicts of `compare` (analysis/release.py) on every split of the runs into two sides of k, and
`check` at the truth. Every run is the same release, so every "regression" is a false alarm.

    python benchmarks/aa_runs.py [--runs 6] [--side 3] [--write-readme]
"""

from __future__ import annotations

import argparse
import itertools
import math
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _readme import write_section  # noqa: E402  (after the path set-up above)

from breakpoint.analysis.release import compare  # noqa: E402
from breakpoint.analysis.requirements import check_requirements  # noqa: E402
from breakpoint.demo.target import TargetConfig, start_target_process  # noqa: E402
from breakpoint.runs.summary import RunSummary, read_summary  # noqa: E402

SEGMENT = "desktop-broadband"
TRUTH = 4.84  # Erlang C: M/M/8, S = 20 ms, p95 250 ms -> 387.3 req/s; / 80 req/s
PLAN = [
    *("--profiles", SEGMENT, "--no-emulation", "--slo-p95-ms", "250", "--baseline-rps", "80"),
    *("--warmup-s", "2", "--hold-s", "5", "--max-multiplier", "8"),
    *("--refine-levels", "1", "--refine-repeats", "1"),
]


def measure(runs: int, out: Path) -> list[RunSummary]:
    """N runs of the same release against one embedded target; their summaries."""
    found = []
    with start_target_process(TargetConfig(workers=8, service_ms=20.0, seed=1)) as target:
        for i in range(runs):
            args = ["run", str(ROOT / "scenarios" / "ground_truth.py"), "--host", target.url]
            args += [*PLAN, "--seed", str(i + 1), "--label", "aa", "--out", str(out)]
            done = subprocess.run(
                [sys.executable, "-m", "breakpoint", *args],
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
            if done.returncode != 0:
                raise SystemExit(
                    f"run {i + 1} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
                )
            found.append(read_summary(Path(done.stdout.strip().splitlines()[-1])))
            print(f"run {i + 1}/{runs} done", flush=True)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--side", type=int, default=3)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        runs = measure(args.runs, Path(folder))
    took = time.monotonic() - started
    breaks = []
    for run in runs:
        (seg,) = [s for s in run.segments if s.profile == SEGMENT]
        breaks.append(seg.breaking)
    points = [b.multiplier for b in breaks if b and b.multiplier]
    logs = [math.log(p) for p in points]
    mean = sum(logs) / len(logs)
    spread = math.sqrt(sum((y - mean) ** 2 for y in logs) / (len(logs) - 1))
    halves = [(math.log(b.high) - math.log(b.low)) / 2 for b in breaks if b and b.low and b.high]
    covered = sum(1 for b in breaks if b and b.low and b.high and b.low <= TRUTH <= b.high)
    verdicts: dict[str, int] = {}
    splits = list(itertools.combinations(range(len(runs)), args.side))
    splits = [s for s in splits if len(runs) - len(s) >= args.side]
    for base_idx in splits:
        rest = [i for i in range(len(runs)) if i not in base_idx][: args.side]
        verdict = compare([runs[i] for i in base_idx], [runs[i] for i in rest]).verdict
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
    gate = check_requirements(runs, {SEGMENT: TRUTH}).requirements[0]
    rows = [
        "| quantity | measured |",
        "|---|---:|",
        f"| runs | {len(runs)} |",
        "| breaking points | " + ", ".join(f"{p:.2f}X" for p in points) + " |",
        f"| truth (Erlang C) | {TRUTH}X |",
        f"| spread between runs (sd of log break) | {spread:.1%} |",
        f"| runs' own 95% half-widths (median, log) | {sorted(halves)[len(halves) // 2]:.1%} |",
        f"| runs whose interval covers the truth | {covered}/{len(runs)} |",
        f"| `compare` on {len(splits)} ordered splits, {args.side} vs {args.side} (each pair "
        "both ways) | " + ", ".join(f"{k}: {v}" for k, v in sorted(verdicts.items())) + " |",
        f"| `check --require {SEGMENT}={TRUTH}` over all runs | {gate.verdict}: {gate.message} |",
    ]
    text = [
        "## aa_runs.py",
        "",
        f"`python benchmarks/aa_runs.py --runs {args.runs} --side {args.side}` "
        f"({time.strftime('%Y-%m-%d')}, {platform.python_version()}; took {took:.0f} s; the "
        "machine was shared with other work). One release measured again and again: the "
        "embedded target (M/M/8, 20 ms), `scenarios/ground_truth.py`, one segment without "
        "emulation, p95 SLO 250 ms, 1X = 80 req/s, 2 s + 5 s steps up to 8X, one refinement "
        "level, seeds 1..N. Every comparison is A/A: a regression would be a false alarm.",
        "",
        *rows,
    ]
    print("\n".join(text))
    if args.write_readme:
        write_section(Path(__file__).with_name("README.md"), "## aa_runs.py", "\n".join(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
