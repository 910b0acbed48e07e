"""How a comparison reads: its terminal table and verdict line, the warnings about runs that
stopped short of their cap, and the chart of each run's break, base against new.

Inputs are the verdicts (analysis/release.py) and each side's typed summaries; nothing here
reads files (docs/design.md#comparison).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt

from breakpoint.analysis.release import Comparison, SegmentComparison
from breakpoint.output.pages import fmt_p, fmt_ratio, fmt_x, plain
from breakpoint.output.report import (
    plots,  # also selects matplotlib's Agg backend before any figure exists
)
from breakpoint.runs.summary import BreakPoint, RunSummary

Runs = Sequence[RunSummary]


def run_marks(runs: Runs, profile: str) -> list[BreakPoint]:
    """Each run's stated break for one segment (runs without one are left out)."""
    return [
        seg.breaking
        for run in runs
        for seg in run.segments
        if seg.profile == profile and seg.breaking is not None
    ]


def held(runs: Runs, profile: str) -> bool:
    """Whether some run of a side held this segment up to the cap (its mean is then a bound)."""
    return any(brk.label == "not_reached" for brk in run_marks(runs, profile))


def stopped_early(side: str, runs: Runs) -> list[str]:
    """Runs whose "held" segments only held as far as the run went, short of its cap.

    summary.json labels such a segment not_reached with the last trusted step as its bound, and
    the comparison counts it there: two runs stopped at different loads then read as "held on
    both sides". Never silent (STYLE: a suspect number is shown as such).
    """
    out = []
    for run in runs:
        cap = run.max_multiplier
        if cap is None:
            continue
        short = [
            (seg.profile, bound)
            for seg in run.segments
            if seg.breaking is not None
            and seg.breaking.label == "not_reached"
            and (bound := seg.breaking.low) is not None
            and bound < cap * 0.999
        ]
        if short:
            top = max(bound for _, bound in short)
            out.append(
                f"{side} run {run.name} stopped at {top:g}X, below its cap {cap:g}X: "
                f"{', '.join(p for p, _ in short)} held only that far, which is not evidence of "
                "no change (see its report's warnings)"
            )
    return out


def _interval(seg: SegmentComparison) -> str:
    if seg.ratio_low is None and seg.ratio_high is None:
        return ""
    low = "0" if seg.ratio_low is None else f"{seg.ratio_low:.2f}"
    high = "∞" if seg.ratio_high is None else f"{seg.ratio_high:.2f}"
    return f" [{low}–{high}]"


TABLE_HEADERS = ("segment", "base", "new", "new/base [95%]", "p", "verdict", "runs needed")
TABLE_RIGHT = {1, 2, 4, 6}  # right-aligned columns


def table_rows(comparison: Comparison, base: Runs, new: Runs) -> list[list[str]]:
    """One terminal row per compared segment, under TABLE_HEADERS."""

    def side(multiplier: float | None, runs: Runs, profile: str, n: int) -> str:
        bound = "≥" if held(runs, profile) else ""
        return f"{bound}{fmt_x(multiplier)} ({n})"

    return [
        [
            s.profile,
            side(s.base_multiplier, base, s.profile, s.base_runs),
            side(s.new_multiplier, new, s.profile, s.new_runs),
            f"{fmt_ratio(s.ratio)}{_interval(s)}",
            fmt_p(s.p_value),
            s.verdict.replace("_", " "),
            "–" if s.runs_needed is None else str(s.runs_needed),
        ]
        for s in comparison.segments
    ]


def verdict_line(comparison: Comparison) -> str:
    """The last word of `breakpoint compare`: the verdict and what it means for the exit code."""
    segments = comparison.segments

    def names(verdict: str) -> str:
        return ", ".join(s.profile for s in segments if s.verdict == verdict)

    if comparison.verdict == "regression":
        worst = min(comparison.regressions, key=lambda s: s.ratio or math.inf)
        moved = (
            f"{worst.profile} breaks at {fmt_ratio(worst.ratio)} × the base "
            f"({fmt_x(worst.base_multiplier)} → {fmt_x(worst.new_multiplier)})"
        )
        if len(comparison.regressions) > 1:
            return f"verdict: REGRESSION in {names('regression')}; worst: {moved} – exit 3"
        return f"verdict: REGRESSION: {moved} – exit 3"
    if comparison.verdict == "inconclusive":
        needed = [s.runs_needed for s in segments if s.runs_needed is not None]
        hint = (
            f"; about {max(needed)} runs a side would decide (`breakpoint run --repeat N`)"
            if needed
            else ""
        )
        return (
            f"verdict: inconclusive for {names('inconclusive')}{hint}"
            if segments
            else ("verdict: inconclusive: no segment was measured on both sides")
        )
    if comparison.verdict == "improvement":
        return f"verdict: improvement in {names('improvement')}, no regression"
    bands = sorted({s.noise_band for s in segments})
    band = "/".join(f"{b:.0%}" for b in bands)
    return f"verdict: no change (every segment within the noise band ±{band})"


def _mark_held(ax: plt.Axes, value: float, y: float, colour: str, label: str | None) -> None:
    ax.plot([value], [y], marker=">", color=colour, mfc="none", markersize=6, lw=0, label=label)


def comparison_chart(comparison: Comparison, base: Runs, new: Runs) -> str:
    """Per segment: each run's break with its interval, base above new, geometric means bold."""
    segments = comparison.segments
    fig, ax = plt.subplots(figsize=(7.5, 0.7 + 0.75 * max(1, len(segments))))
    colours = {"base": plots.PALETTE[0], "new": plots.PALETTE[1]}
    top = 1.0
    labelled: set[str] = set()
    for y_seg, seg in enumerate(reversed(segments)):
        for side, runs, offset, mean in (
            ("base", base, 0.17, seg.base_multiplier),
            ("new", new, -0.17, seg.new_multiplier),
        ):
            colour = colours[side]
            marks = run_marks(runs, seg.profile)
            spread = 0.12 / max(1, len(marks))
            for i, brk in enumerate(marks):
                y = y_seg + offset + (i - (len(marks) - 1) / 2) * spread
                if brk.label == "not_reached":
                    bound = next((v for v in (brk.low, brk.high, brk.multiplier) if v), None)
                    if bound:
                        key = f"{side} held"
                        text = None if key in labelled else f"{side}: held up to the cap"
                        _mark_held(ax, bound, y, colour, text)
                        labelled.add(key)
                        top = max(top, bound)
                    continue
                m = brk.multiplier
                if m is None:
                    continue
                low, high = brk.low or m, brk.high or m
                ax.plot([low, high], [y, y], color=colour, lw=1.2, alpha=0.7)
                ax.plot([m], [y], marker="o", color=colour, markersize=3.5, alpha=0.8)
                top = max(top, high)
            if mean is not None and not all(b.label == "not_reached" for b in marks):
                ax.plot(
                    [mean],
                    [y_seg + offset],
                    marker="D",
                    color=colour,
                    markersize=7,
                    mec="white",
                    label=None if side in labelled else f"{side} (geometric mean)",
                )
                labelled.add(side)
                top = max(top, mean)
    ax.set_yticks(
        range(len(segments)),
        [f"{plain(s.profile)}\n{s.verdict.replace('_', ' ')}" for s in reversed(segments)],
        parse_math=False,
    )
    ax.axvline(1.0, color="#999999", lw=1, ls="--")
    ax.set_xlim(0, top * 1.1)
    ax.set_ylim(-0.6, len(segments) - 0.4)
    ax.set_xlabel("breaking point (load multiplier); lines: each run's 95% interval")
    ax.grid(axis="y", visible=False)
    if labelled:
        # Outside the axes: breaks cluster on the right, where a legend inside would hide them.
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return plots._svg(fig)
