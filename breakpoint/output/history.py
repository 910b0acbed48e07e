"""`breakpoint history`: every stored run with each segment's break, and a trend report.

Reads the run index (runs/index.py, a cache of the run folders), prints one row per run and,
with --html, writes a self-contained page with each segment's breaking point release by
release (analysis/release_history.py; docs/design.md#comparison). Never imports locust.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from markupsafe import Markup

from breakpoint import __version__
from breakpoint.analysis.changepoint import ChangePoint
from breakpoint.analysis.release_history import changes, history
from breakpoint.errors import StoreError
from breakpoint.output.pages import ENV, fmt_break, fmt_when, fmt_x, plain, table
from breakpoint.output.report import (
    plots,  # also selects matplotlib's Agg backend before any figure exists
)
from breakpoint.runs.index import IndexedRun, indexed_runs

Say = Callable[[str], None]


def trend_chart(profile: str, points: Sequence[Mapping[str, Any]], colour: str) -> str:
    """One segment's breaking point per label (release) in time order, with intervals."""
    fig, ax = plt.subplots(figsize=(4.8, 3.0))
    xs = list(range(len(points)))
    top = 1.0
    for x, point in zip(xs, points, strict=True):
        m = point.get("multiplier")
        if m is not None and point.get("status") != "not_reached":
            low = point.get("low") or m
            high = point.get("high") or m
            ax.errorbar(
                [x],
                [m],
                yerr=[[max(0.0, m - low)], [max(0.0, high - m)]],
                fmt="o",
                color=colour,
                capsize=3,
                markersize=5,
            )
            top = max(top, high)
        if point.get("not_reached") and point.get("cap"):
            ax.plot([x], [point["cap"]], marker="^", color=colour, mfc="none", markersize=8)
            top = max(top, point["cap"])
    for x, point in zip(xs, points, strict=True):
        if point.get("change"):
            ax.axvline(x - 0.5, color="#b3261e", lw=1.2, ls="--")
            ax.annotate(
                f"{point['change_ratio'] - 1:+.0%}",
                xy=(x - 0.5, 0.98),
                xycoords=("data", "axes fraction"),
                ha="left",
                va="top",
                fontsize=7,
                color="#b3261e",
                xytext=(3, 0),
                textcoords="offset points",
            )
    measured = [(x, p["multiplier"]) for x, p in zip(xs, points, strict=True) if p["multiplier"]]
    if len(measured) > 1:
        ax.plot([x for x, _ in measured], [m for _, m in measured], color=colour, lw=1, alpha=0.5)
    ax.set_xticks(
        xs,
        [plain(str(p["label"]), 18) for p in points],
        rotation=30,
        ha="right",
        fontsize=7,
        parse_math=False,
    )
    ax.set_xlim(-0.5, len(points) - 0.5)
    ax.set_ylim(0, top * 1.15)
    ax.set_ylabel("breaking point (X)")
    ax.set_title(plain(profile, 40), fontsize=10, loc="left", parse_math=False)
    ax.grid(axis="x", visible=False)
    return plots._svg(fig)


def _history_rows(
    runs: Sequence[IndexedRun], profiles: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    headers = ["time", "label", "run id", "status", "first to break", *profiles]
    rows = []
    for run in runs:
        breaks = {b.profile: b.to_break() for b in run.breaks}
        status = run.status or "?"
        if not run.has_summary:
            status += " (unpublished)"
        rows.append(
            [
                fmt_when(run.created_at),
                run.label,
                run.run_id,
                status,
                run.first_to_break or ("–" if run.has_summary else ""),
                *(fmt_break(breaks.get(p)) if run.has_summary else "" for p in profiles),
            ]
        )
    return headers, rows


def change_text(profile: str, change: ChangePoint) -> str:
    """One change point as a sentence: which release moved the break, from what to what."""
    return (
        f"{profile}: breaking point moved at {change.label}: {fmt_x(change.before)} → "
        f"{fmt_x(change.after)} ({change.ratio - 1:+.0%}; z {change.z:+.1f}, "
        f"needed ±{change.threshold:.1f})"
    )


def _change_lines(found: Mapping[str, Sequence[ChangePoint]], releases: int) -> list[str]:
    lines = [f"change: {change_text(p, c)}" for p, cs in found.items() for c in cs]
    if not lines and releases >= 2:
        lines = [
            f"no change point: no segment's breaking point moved beyond the run-to-run noise "
            f"across {releases} releases (runs that held to the cap are not counted)"
        ]
    return lines


def run_history(*, out_dir: Path, html_path: Path | None = None, say: Say = print) -> None:
    """Print every stored run with each segment's break; optionally write a trend report."""
    runs = indexed_runs(out_dir)
    profiles = list(dict.fromkeys(b.profile for r in runs for b in r.breaks))
    if not runs:
        say(f"no runs under {out_dir} (run `breakpoint demo` or `breakpoint run` first)")
    else:
        headers, rows = _history_rows(runs, profiles)
        for line in table(headers, rows, right=set(range(5, 5 + len(profiles)))):
            say(line)
        if any(r.breaks and any(b.label == "extrapolated" for b in r.breaks) for r in runs):
            say("* extrapolated beyond the last measured step; ≥: held up to the cap")
    published = [r.as_summary() for r in runs if r.has_summary]
    found = changes(published)
    releases = len({r.label or r.run_id for r in published})
    for line in _change_lines(found, releases):
        say(line)
    if html_path is None:
        return
    trend = history(published)
    for profile, points in trend.items():
        for change in found.get(profile, ()):
            points[change.index] |= {
                "change": change_text(profile, change),
                "change_ratio": change.ratio,
            }
    charts = [
        {
            "profile": profile,
            "points": points,
            "svg": Markup(trend_chart(profile, points, plots.PALETTE[i % len(plots.PALETTE)])),
        }
        for i, (profile, points) in enumerate(trend.items())
    ]
    headers, rows = _history_rows(runs, profiles)
    html = ENV.get_template("history.html.j2").render(
        out_dir=str(out_dir),
        generated_at=time.time(),
        runs=runs,
        headers=headers,
        rows=rows,
        charts=charts,
        changes=_change_lines(found, releases),
        version=__version__,
    )
    try:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"{html_path}: cannot write the trend report: {exc.strerror}") from None
    say(str(html_path))  # last, like `run` and `demo`: scripts read the path from it
