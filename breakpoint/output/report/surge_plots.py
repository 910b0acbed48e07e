"""The surge report's chart: one segment's per-second series with the phases shaded.

Top: the per-second p95 (95% of the requests due that second, a failure counting as slower than
any success) against the objective; bottom: iterations offered vs finished per second and the
backlog. Plain numbers in, an inline `<svg>` out (plots._svg); no files, no locust.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt

from breakpoint.analysis.surge import Phases, SecondBin, in_flight
from breakpoint.output.report.plots import _svg

PHASE_COLOURS = {"surge": "#D55E00", "recovery": "#009E73"}


def _shade(ax: plt.Axes, phases: Phases, recovered_s: float | None) -> None:
    ax.axvspan(phases.surge_from_s, phases.drop_s, color=PHASE_COLOURS["surge"], alpha=0.12)
    until = phases.drop_s + recovered_s if recovered_s is not None else phases.end_s
    ax.axvspan(phases.drop_s, until, color=PHASE_COLOURS["recovery"], alpha=0.10)
    if recovered_s is not None:
        ax.axvline(until, color=PHASE_COLOURS["recovery"], lw=1.2, ls="--")


def timeline(
    bins: Sequence[SecondBin],
    phases: Phases,
    objective_ms: float,
    recovered_s: float | None,
    *,
    min_requests: int,
) -> str:
    """The segment's surge, second by second (x: seconds from the start of the run)."""
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10.5, 4.6), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    xs = [i + 0.5 for i in range(len(bins))]
    judged = [(x, b) for x, b in zip(xs, bins, strict=True) if b.requests >= min_requests]
    ok = [(x, b.p95_all_ms) for x, b in judged if b.p95_all_ms is not None]
    failing = [x for x, b in judged if b.p95_all_ms is None]
    sparse = [x for x, b in zip(xs, bins, strict=True) if 0 < b.requests < min_requests]
    peak = max([objective_ms * 1.5] + [v for _, v in ok])
    _shade(top, phases, recovered_s)
    top.plot(
        [x for x, _ in ok],
        [v for _, v in ok],
        "-o",
        color="#0072B2",
        ms=2.5,
        lw=1.1,
        label="p95 of the second's requests",
    )
    if failing:
        top.plot(
            failing, [peak] * len(failing), "v", color="#b3261e", ms=5, label="more than 5% failed"
        )
    if sparse:
        top.plot(
            sparse,
            [0] * len(sparse),
            "|",
            color="#777777",
            ms=6,
            label=f"fewer than {min_requests} requests: no verdict",
        )
    top.axhline(objective_ms, color="#b3261e", lw=1.0, ls=":", label="objective")
    top.set_yscale("log" if peak > 20 * objective_ms else "linear")
    top.set_ylabel("p95 (ms)")
    top.legend(fontsize=7, frameon=False, loc="upper right", ncol=2)
    _shade(bottom, phases, recovered_s)
    bottom.step(
        xs, [b.offered for b in bins], where="mid", color="#999999", lw=1.1, label="offered /s"
    )
    bottom.step(
        xs, [b.finished for b in bins], where="mid", color="#0072B2", lw=1.1, label="completed /s"
    )
    backlog = bottom.twinx()
    backlog.plot(xs, in_flight(bins), color="#CC79A7", lw=1.2, label="backlog (in flight)")
    backlog.set_ylabel("in flight", color="#CC79A7")
    backlog.grid(False)
    backlog.spines["right"].set_visible(True)
    bottom.set_ylabel("iterations / s")
    bottom.set_xlabel("seconds from the start (shaded: surge, then recovery)")
    lines, labels = bottom.get_legend_handles_labels()
    lines2, labels2 = backlog.get_legend_handles_labels()
    bottom.legend(lines + lines2, labels + labels2, fontsize=7, frameon=False, loc="upper right")
    end = phases.end_s if math.isfinite(phases.end_s) else len(bins)
    top.set_xlim(0, max(end, len(bins)))
    return _svg(fig, "wide")
