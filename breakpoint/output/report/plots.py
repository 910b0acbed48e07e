"""Charts for the report: matplotlib (Agg) rendered to inline SVG strings.

Each function takes plain numbers and returns an `<svg>` element as text; text in the charts is
escaped by matplotlib's SVG writer. Nothing here reads files or imports locust.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

# Colour-blind-safe palette (Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
LABEL_COLOURS = {
    "bracketed": "#0072B2",
    "extrapolated": "#E69F00",
    "not_reached": "#009E73",
    "no_verdict": "#777777",
}
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


def _svg(fig: plt.Figure, css_class: str = "") -> str:
    """The figure as an inline `<svg>` element (closes the figure); `css_class` sizes it."""
    buf = io.StringIO()
    # A distinct salt per figure keeps element ids unique when several SVGs share one page.
    with plt.rc_context({"svg.hashsalt": f"bp{next(_counter)}"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    if css_class:
        text = text.replace("<svg ", f'<svg class="{css_class}" ', 1)
    return text


@dataclass(frozen=True)
class LadderRow:
    segment: str
    multiplier: float | None
    low: float | None
    high: float | None
    label: str
    held_to: float | None = None  # not reached: the highest level the segment was measured at


def _ladder_text(row: LadderRow) -> str:
    if row.label == "no_verdict":
        return "no verdict (too few requests)"
    if row.label == "not_reached":
        return f"holds at {row.held_to:.3g}X" if row.held_to else "holds"
    if row.multiplier is None:
        return "unknown"
    text = f"{row.multiplier:.3g}X"
    if row.low is not None and row.high is not None:
        text += f"  ({row.low:.3g}–{row.high:.3g})"
    return text + ("  extrapolated" if row.label == "extrapolated" else "")


def ladder(
    rows: Sequence[LadderRow], *, max_multiplier: float, expected_multiplier: float | None = None
) -> str:
    """Breaking point per segment on one axis, interval whiskers, 1X / event / 10X lines.

    The exact value and interval of each row is written beside the axis: breaks often cluster
    (the segments share one server) and the dots alone would not tell them apart.
    """
    height = 0.75 + 0.34 * max(1, len(rows))
    fig, ax = plt.subplots(figsize=(10.5, height))
    top = max(
        [max_multiplier, 10.0]
        + [r.high or 0 for r in rows]
        + [r.multiplier or 0 for r in rows]
        + [r.held_to or 0 for r in rows]
    )
    for y, row in enumerate(reversed(rows)):
        colour = LABEL_COLOURS.get(row.label, "#555555")
        ax.text(
            1.01,
            y,
            _ladder_text(row),
            color=colour,
            va="center",
            fontsize=8.5,
            transform=ax.get_yaxis_transform(),
        )
        if row.label == "not_reached":
            # A short arrow: "at least this far". Only a segment held up to the cap points on.
            start = row.held_to or max_multiplier
            reach = top * 1.06 if start >= max_multiplier - 1e-9 else start + top * 0.05
            ax.annotate(
                "",
                xy=(reach, y),
                xytext=(start, y),
                arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.5},
            )
            ax.plot([start], [y], marker="|", color=colour, markersize=11)
            continue
        if row.multiplier is None:
            continue
        low = row.low if row.low is not None else row.multiplier
        high = row.high if row.high is not None else row.multiplier
        ax.plot([low, high], [y, y], color=colour, lw=2.5, solid_capstyle="butt")
        ax.plot([low, high], [y, y], marker="|", color=colour, markersize=10, lw=0)
        marker = "o" if row.label == "bracketed" else "D"
        ax.plot([row.multiplier], [y], marker=marker, color=colour, markersize=6.5)
    ax.set_yticks(range(len(rows)), [r.segment for r in reversed(rows)])
    marks = [(1.0, "1X normal"), (10.0, "10X")]
    if expected_multiplier:
        marks.append((expected_multiplier, f"event {expected_multiplier:g}X"))
    for x, text in marks:
        event = text.startswith("event")
        colour = "#CC0000" if event else "#999999"
        ax.axvline(x, color=colour, lw=1.2 if event else 1, ls=":" if event else "--")
        ax.text(x, len(rows) - 0.5, text, color=colour, fontsize=8, ha="center", va="bottom")
    ax.set_xlim(0, top * 1.08)
    ax.set_ylim(-0.6, len(rows) - 0.45)
    ax.set_xlabel("load multiplier (X = expected normal load)")
    ax.grid(axis="y", visible=False)
    return _svg(fig, "wide")


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
    fit_used: bool = True  # False: the analysis did not trust the fit; drawn faint and dashed


def curve(data: CurveData, colour: str = PALETTE[0]) -> str:
    """p95 against load: measured points with spread, fit, interval band, SLO line, break."""
    fig, ax = plt.subplots(figsize=(4.8, 2.7))
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
        style = {"lw": 1.4} if data.fit_used else {"lw": 1.1, "ls": "--", "alpha": 0.45}
        ax.plot(data.fit_x, data.fit_p95, color=colour, label="fit", **style)
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
        ax.axvline(data.break_x, color="#E69F00", lw=1.5, label="break")
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
    return _svg(fig, "wide")


def curve_legend(*, unused_fit: bool = False, colour: str = "#555555") -> str:
    """One legend for every degradation curve (each curve has its own colour; shown in grey).

    `unused_fit` adds the faint dashed line of a fit the analysis did not trust.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Line2D([], [], marker="o", color=colour, lw=0, markersize=4, label="measured p95"),
        Line2D(
            [], [], marker="o", mfc="none", mec="#CC0000", lw=0, markersize=7, label="failed step"
        ),
        Line2D([], [], color=colour, lw=1.4, label="fit"),
        Patch(color=colour, alpha=0.15, lw=0, label="fit interval"),
        Line2D([], [], color="#CC0000", lw=1, ls="--", label="SLO"),
        Line2D([], [], color="#E69F00", lw=1.5, label="break"),
        Patch(color="#E69F00", alpha=0.15, lw=0, label="break interval"),
    ]
    if unused_fit:
        faint = Line2D([], [], color=colour, lw=1.1, ls="--", alpha=0.45, label="fit (not used)")
        handles.insert(3, faint)
    fig = plt.figure(figsize=(10.5, 0.3))
    fig.legend(handles=handles, loc="center", ncol=len(handles), frameon=False, fontsize=8)
    return _svg(fig)


@dataclass(frozen=True)
class PartsColumn:
    """Mean latency parts of one segment at one load level."""

    segment: str
    multiplier: float
    parts_ms: Mapping[str, float]


def decomposition(columns: Sequence[PartsColumn]) -> str:
    """Stacked mean network / server / device time, grouped by segment (a few loads each)."""
    fig, ax = plt.subplots(figsize=(10.5, 3.1))
    xs: list[float] = []
    groups: dict[str, list[float]] = {}
    x = 0.0
    for i, col in enumerate(columns):
        if i and col.segment != columns[i - 1].segment:
            x += 0.8  # a gap between segments
        xs.append(x)
        groups.setdefault(col.segment, []).append(x)
        x += 1.0
    bottom = [0.0] * len(columns)
    for part in ("network", "server", "device"):
        values = [c.parts_ms.get(part, 0.0) for c in columns]
        ax.bar(xs, values, bottom=bottom, color=PART_COLOURS[part], label=part, width=0.85)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(xs, [f"{c.multiplier:.3g}X" for c in columns], fontsize=7)
    for name, positions in groups.items():
        ax.text(
            sum(positions) / len(positions),
            -0.16,
            name,
            ha="center",
            va="top",
            fontsize=8,
            transform=ax.get_xaxis_transform(),
        )
    ax.set_xlim(-0.7, x - 0.3)
    ax.set_ylabel("mean experienced latency (ms)")
    ax.legend(fontsize=8, frameon=False, ncol=3, loc="lower left", bbox_to_anchor=(0, 1.0))
    ax.grid(axis="x", visible=False)
    return _svg(fig, "wide")


def throughput(
    x: Sequence[float],
    offered: Sequence[float],
    completed: Sequence[float],
    errors: Sequence[float],
) -> str:
    """Offered vs completed load (and error rate) per step, in order of load.

    Every step is a point; the lines join each level's median, so repeats and refinement steps
    run out of order do not draw the curve back and forth.
    """
    fig, ax = plt.subplots(figsize=(5.6, 3.0))
    ax2 = ax.twinx()
    series = (
        (ax, offered, 1.0, "o", "-", "#999999", "offered"),
        (ax, completed, 1.0, "o", "-", "#0072B2", "completed"),
        (ax2, errors, 100.0, "s", "--", "#D55E00", "errors %"),
    )
    levels = sorted({round(m, 9) for m in x})
    for axis, values, scale, marker, style, colour, label in series:
        scaled = [v * scale for v in values]
        axis.plot(x, scaled, marker, color=colour, markersize=3, alpha=0.6)
        medians = [
            float(np.median([v for m, v in zip(x, scaled, strict=True) if round(m, 9) == lv]))
            for lv in levels
        ]
        axis.plot(levels, medians, style, color=colour, lw=1.3, label=label)
    ax.set_xlabel("load multiplier")
    ax.set_ylabel("iterations per second")
    ax2.set_ylabel("errors (%)", color="#D55E00")
    ax2.set_ylim(0, max([5.0] + [e * 100 * 1.2 for e in errors]))
    ax2.grid(False)
    ax2.spines["right"].set_visible(True)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(
        lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, frameon=False, loc="upper left"
    )
    return _svg(fig)
