"""Charts for the report: matplotlib (Agg) rendered to inline SVG strings.

Each function takes plain numbers and returns an `<svg>` element as text; text in the charts is
escaped by matplotlib's SVG writer. Nothing here reads files or imports locust.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

# Colour-blind-safe palette (Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
LABEL_COLOURS = {"bracketed": "#0072B2", "extrapolated": "#E69F00", "not_reached": "#009E73"}
PART_COLOURS = {"network": "#56B4E9", "server": "#D55E00", "device": "#CC79A7"}

plt.rcParams.update(
    {
        "svg.fonttype": "none",  # keep text as text: smaller files, selectable labels
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
    }
)

_counter = iter(range(1_000_000))


def _svg(fig: plt.Figure) -> str:
    buf = io.StringIO()
    # A distinct salt per figure keeps element ids unique when several SVGs share one page.
    with plt.rc_context({"svg.hashsalt": f"bp{next(_counter)}"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


@dataclass(frozen=True)
class LadderRow:
    segment: str
    multiplier: float | None
    low: float | None
    high: float | None
    label: str


def ladder(
    rows: Sequence[LadderRow], *, max_multiplier: float, expected_multiplier: float | None = None
) -> str:
    """Breaking point per segment on one axis, interval whiskers, 1X / event / 10X lines."""
    height = 0.5 + 0.42 * max(1, len(rows))
    fig, ax = plt.subplots(figsize=(7.5, height))
    top = max(
        [max_multiplier, 10.0] + [r.high or 0 for r in rows] + [r.multiplier or 0 for r in rows]
    )
    for y, row in enumerate(reversed(rows)):
        colour = LABEL_COLOURS.get(row.label, "#555555")
        if row.label == "not_reached":
            ax.annotate(
                "",
                xy=(top * 1.04, y),
                xytext=(max_multiplier, y),
                arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.5},
            )
            ax.plot([max_multiplier], [y], marker="|", color=colour, markersize=12)
            ax.text(
                max_multiplier,
                y + 0.22,
                f"holds at {max_multiplier:g}X",
                color=colour,
                ha="center",
                fontsize=8,
            )
            continue
        if row.multiplier is None:
            continue
        low = row.low if row.low is not None else row.multiplier
        high = row.high if row.high is not None else row.multiplier
        ax.plot([low, high], [y, y], color=colour, lw=2.5, solid_capstyle="butt")
        ax.plot([low, high], [y, y], marker="|", color=colour, markersize=10, lw=0)
        marker = "o" if row.label == "bracketed" else "D"
        ax.plot([row.multiplier], [y], marker=marker, color=colour, markersize=7)
        ax.text(
            row.multiplier,
            y + 0.22,
            f"{row.multiplier:.2g}X",
            color=colour,
            ha="center",
            fontsize=8,
        )
    ax.set_yticks(range(len(rows)), [r.segment for r in reversed(rows)])
    for x, text in ((1.0, "1X normal"), (10.0, "10X")):
        ax.axvline(x, color="#999999", lw=1, ls="--")
        ax.text(x, len(rows) - 0.45, text, color="#666666", fontsize=8, ha="center")
    if expected_multiplier:
        ax.axvline(expected_multiplier, color="#CC0000", lw=1.2, ls=":")
        ax.text(
            expected_multiplier,
            len(rows) - 0.45,
            f"event {expected_multiplier:g}X",
            color="#CC0000",
            fontsize=8,
            ha="center",
        )
    ax.set_xlim(0, top * 1.08)
    ax.set_ylim(-0.6, len(rows) - 0.3)
    ax.set_xlabel("load multiplier (X = expected normal load)")
    ax.grid(axis="y", visible=False)
    return _svg(fig)


@dataclass(frozen=True)
class CurveData:
    segment: str
    slo_ms: float
    measured_x: Sequence[float]  # one per level
    measured_p95: Sequence[float]  # median over repeats
    measured_low: Sequence[float]  # spread over repeats (min)
    measured_high: Sequence[float]  # (max)
    failed_x: Sequence[float]  # levels where the segment failed
    fit_x: Sequence[float] = ()
    fit_p95: Sequence[float] = ()
    band_low: Sequence[float] = ()
    band_high: Sequence[float] = ()
    break_x: float | None = None
    break_low: float | None = None
    break_high: float | None = None
    label: str = ""


def curve(data: CurveData, colour: str = PALETTE[0]) -> str:
    """p95 against load: measured points with spread, fit, interval band, SLO line, break."""
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    if data.break_low is not None and data.break_high is not None:
        ax.axvspan(
            data.break_low,
            data.break_high,
            color="#E69F00",
            alpha=0.15,
            lw=0,
            label="break interval",
        )
    if len(data.band_low):
        ax.fill_between(
            data.fit_x,
            data.band_low,
            data.band_high,
            color=colour,
            alpha=0.15,
            lw=0,
            label="fit interval",
        )
    if len(data.fit_x):
        ax.plot(data.fit_x, data.fit_p95, color=colour, lw=1.4, label="fit")
    if len(data.measured_x):
        yerr = [
            [max(0.0, m - lo) for m, lo in zip(data.measured_p95, data.measured_low, strict=True)],
            [max(0.0, hi - m) for m, hi in zip(data.measured_p95, data.measured_high, strict=True)],
        ]
        ax.errorbar(
            data.measured_x,
            data.measured_p95,
            yerr=yerr,
            fmt="o",
            color=colour,
            markersize=4,
            capsize=2,
            lw=1,
            label="measured p95",
        )
        failed = [
            (x, y)
            for x, y in zip(data.measured_x, data.measured_p95, strict=True)
            if any(math.isclose(x, f) for f in data.failed_x)
        ]
        if failed:
            ax.plot(
                [x for x, _ in failed],
                [y for _, y in failed],
                "o",
                mfc="none",
                mec="#CC0000",
                markersize=8,
                label="failed step",
            )
    ax.axhline(data.slo_ms, color="#CC0000", lw=1, ls="--", label=f"SLO {data.slo_ms:g} ms")
    if data.break_x is not None:
        ax.axvline(
            data.break_x,
            color="#E69F00",
            lw=1.5,
            label=f"break {data.break_x:.2g}X ({data.label.replace('_', ' ')})",
        )
    values = [
        v for v in list(data.measured_p95) + list(data.measured_high) + [data.slo_ms] if v and v > 0
    ]
    if values:
        ax.set_yscale("log")
        ax.set_ylim(min(values) * 0.7, max(values) * 1.6)
        plain = FuncFormatter(lambda v, _pos: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(
            FuncFormatter(lambda v, _pos: f"{v:g}" if f"{v:g}"[0] in "25" else "")
        )
    ax.set_xlabel("load multiplier")
    ax.set_ylabel("p95 experienced latency (ms)")
    ax.set_title(data.segment, fontsize=10, loc="left")
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    return _svg(fig)


def decomposition(labels: Sequence[str], parts: Sequence[dict[str, float]]) -> str:
    """Stacked mean network / server / device time for a few (segment, load) columns."""
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * len(labels) + 1.5), 3.0))
    bottom = [0.0] * len(labels)
    for part in ("network", "server", "device"):
        values = [p.get(part, 0.0) for p in parts]
        ax.bar(range(len(labels)), values, bottom=bottom, color=PART_COLOURS[part], label=part)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("mean experienced latency (ms)")
    ax.legend(fontsize=7, frameon=False)
    ax.grid(axis="x", visible=False)
    return _svg(fig)


def throughput(
    x: Sequence[float],
    offered: Sequence[float],
    completed: Sequence[float],
    errors: Sequence[float],
) -> str:
    """Offered vs completed load (and error rate) per step."""
    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    ax.plot(x, offered, "o-", color="#999999", markersize=3, label="offered")
    ax.plot(x, completed, "o-", color="#0072B2", markersize=3, label="completed")
    ax.set_xlabel("load multiplier")
    ax.set_ylabel("iterations per second")
    ax2 = ax.twinx()
    ax2.plot(x, [e * 100 for e in errors], "s--", color="#D55E00", markersize=3, label="errors %")
    ax2.set_ylabel("errors (%)", color="#D55E00")
    ax2.set_ylim(0, max([5.0] + [e * 100 * 1.2 for e in errors]))
    ax2.grid(False)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(
        lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, frameon=False, loc="upper left"
    )
    return _svg(fig)
