"""False alarms and power of the release verdicts, on simulated runs (no load is sent).

Each simulated run states one segment's break as `summary.json` does: a point drawn log-normally
around the release's true break (run-to-run spread `cv`) with its own 95% interval of +/- `hw`.
The same code as `breakpoint compare` decides (analysis/release.py), so the rates below are
those of the shipped rule. An A/A pair (same true break on both sides) that gets "regression"
is a false alarm; an A/B pair with a real drop that gets "regression" counts toward power.
Also measured: `breakpoint check`'s false failures (a requirement below the true break judged
"fail") and the history's change-point false alarms on 8 releases with no change.

    python benchmarks/comparison.py [--trials 1000] [--write-readme]
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _readme import write_section  # noqa: E402  (after the path set-up above)

from breakpoint.analysis.release import compare  # noqa: E402
from breakpoint.runs.summary import RunSummary  # noqa: E402

SEGMENT = "android-lowend-3g"
TRUE_BREAK = 8.0


def run(point: float, hw: float, label: str, index: int) -> RunSummary:
    """One run's summary with a bracketed break at `point` and a +/- hw interval."""
    return RunSummary.from_dict(
        {
            "schema": 1,
            "run_id": f"{label}-{index}",
            "label": label,
            "model": "open",
            "status": "complete",
            "max_multiplier": 50.0,
            "segments": [
                {
                    "profile": SEGMENT,
                    "break": {
                        "multiplier": point,
                        "low": point * (1 - hw),
                        "high": point * (1 + hw),
                        "label": "bracketed",
                        "criterion": "latency",
                    },
                }
            ],
        }
    )


def side(
    rng: np.random.Generator, n: int, true_break: float, cv: float, hw: float, label: str
) -> list[RunSummary]:
    points = true_break * np.exp(rng.normal(0.0, cv, n))
    return [run(float(p), hw, label, i) for i, p in enumerate(points)]


def verdict_rates(
    n: int, cv: float, hw: float, drop: float, trials: int, seed: int
) -> dict[str, float]:
    """Share of trials per verdict, base at TRUE_BREAK against new at TRUE_BREAK x (1 - drop)."""
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for trial in range(trials):
        base = side(rng, n, TRUE_BREAK, cv, hw, "base")
        new = side(rng, n, TRUE_BREAK * (1 - drop), cv, hw, "new")
        verdict = compare(base, new, seed=trial).verdict
        counts[verdict] = counts.get(verdict, 0) + 1
    return {k: v / trials for k, v in counts.items()}


CASES: tuple[tuple[int, float, float], ...] = (
    # runs a side, run-to-run spread (cv), each run's interval half-width
    (1, 0.04, 0.05),
    (2, 0.04, 0.05),
    (3, 0.02, 0.05),
    (3, 0.04, 0.05),
    (3, 0.08, 0.05),
    (5, 0.04, 0.05),
)
DROPS = (0.10, 0.20, 0.30)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def comparison_table(trials: int, seed: int) -> list[str]:
    lines = [
        "| runs a side | spread between runs (cv) | run interval | A/A false regressions | "
        "A/A false improvements | A/A no change | "
        + " | ".join(f"regression found, {int(d * 100)}% drop" for d in DROPS)
        + " |",
        "|" + "---:|" * (6 + len(DROPS)),
    ]
    for i, (n, cv, hw) in enumerate(CASES):
        aa = verdict_rates(n, cv, hw, 0.0, trials, seed + 100 * i)
        power = [
            verdict_rates(n, cv, hw, d, trials, seed + 100 * i + j + 1).get("regression", 0.0)
            for j, d in enumerate(DROPS)
        ]
        lines.append(
            f"| {n} | {_pct(cv)} | ±{_pct(hw)} | {_pct(aa.get('regression', 0.0))} | "
            f"{_pct(aa.get('improvement', 0.0))} | {_pct(aa.get('no_change', 0.0))} | "
            + " | ".join(_pct(p) for p in power)
            + " |"
        )
    return lines


def check_rates(trials: int, seed: int) -> list[str]:
    """`check`'s verdicts for a requirement 10% below, at, and 10% above the true break."""
    from breakpoint.analysis.requirements import check_requirements

    lines = [
        "| runs | spread between runs (cv) | run interval | requirement / true break | "
        "pass | fail | inconclusive |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rng = np.random.default_rng(seed)
    for n, cv, hw in ((1, 0.0255, 0.05), (1, 0.04, 0.05), (3, 0.04, 0.05)):
        for ratio in (0.9, 1.0, 1.1):
            counts: dict[str, int] = {}
            for _ in range(trials):
                runs = side(rng, n, TRUE_BREAK, cv, hw, "rc")
                result = check_requirements(runs, {SEGMENT: TRUE_BREAK * ratio})
                verdict = result.requirements[0].verdict
                counts[verdict] = counts.get(verdict, 0) + 1
            lines.append(
                f"| {n} | {_pct(cv)} | ±{_pct(hw)} | {ratio:.1f} | "
                + " | ".join(
                    _pct(counts.get(v, 0) / trials) for v in ("pass", "fail", "inconclusive")
                )
                + " |"
            )
    return lines


def changepoint_rates(trials: int, seed: int) -> list[str]:
    """Change points found on 8 releases of 3 runs with no change, and with one 15% drop."""
    from breakpoint.analysis.changepoint import ReleasePoint, change_points

    lines = [
        "| history (8 releases) | runs a release | spread (cv) | no change point found | "
        "the drop found, and nothing else | a false change point |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rng = np.random.default_rng(seed)
    for runs_per, cv in ((1, 0.04), (3, 0.04), (3, 0.08)):
        for drop in (0.0, 0.15):
            none = exact = false = 0
            for _ in range(trials):
                releases = []
                for r in range(8):
                    true_break = TRUE_BREAK * (1 - drop if r >= 5 else 1.0)
                    points = true_break * np.exp(rng.normal(0.0, cv, runs_per))
                    logs = [math.log(float(p)) for p in points]
                    halves = [math.log(1.05) for _ in points]
                    releases.append(ReleasePoint(f"r{r}", tuple(logs), tuple(halves)))
                found = [c.index for c in change_points(releases)]
                none += not found
                exact += found == [5]
                false += any(i != 5 for i in found) if drop else bool(found)
            label = "one 15% drop at release 6" if drop else "no change"
            lines.append(
                f"| {label} | {runs_per} | {_pct(cv)} | {_pct(none / trials)} | "
                f"{_pct(exact / trials) if drop else '–'} | {_pct(false / trials)} |"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    sections: list[tuple[str, list[str]]] = [
        ("Release comparison (`breakpoint compare`)", comparison_table(args.trials, args.seed))
    ]
    optional: list[tuple[str, Any]] = [
        ("Requirement gate (`breakpoint check`)", check_rates),
        ("Change points in `history`", changepoint_rates),
    ]
    for title, fn in optional:
        try:
            sections.append((title, fn(args.trials, args.seed)))
        except ImportError:
            continue
    took = time.monotonic() - started
    header = (
        f"`python benchmarks/comparison.py --trials {args.trials}` "
        f"({time.strftime('%Y-%m-%d')}, Python {platform.python_version()}; took {took:.0f} s). "
        f"Simulated runs, no load: each run states one segment's break, drawn log-normally "
        f"around the release's true break ({TRUE_BREAK:g}X) with the given spread between runs, "
        f"with a 95% interval of the given half-width; {args.trials} trials per row, seeded. "
        "The verdicts are those of the shipped code."
    )
    text = ["## comparison.py", "", header, ""]
    for title, lines in sections:
        text += [f"{title}:", "", *lines, ""]
    text += [
        "Reading: a false regression is a 'regression' between two samples of one release. The "
        "gate (`check`) is only as good as each run's interval: rows where the runs spread more "
        "between them than their own intervals say (4% spread against ±5% intervals, which "
        "imply 2.5%) pass a requirement equal to the true break more often than rows where the "
        "intervals are honest; several runs a label restore it, as the spread between them is "
        "then measured. Change points with one run a release lean on the scatter of successive "
        "releases (few differences: t quantiles), so they find less than with 3 runs a release.",
    ]
    print("\n".join(text))
    if args.write_readme:
        write_section(Path(__file__).with_name("README.md"), "## comparison.py", "\n".join(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
