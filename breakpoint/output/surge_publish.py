"""Outputs of a surge rehearsal: summary.json (`kind: "surge"`), summary.md and report.html.

Called by publish.py for run folders whose run.json says `kind: "surge"`, at the end of
`breakpoint surge` and by `breakpoint report RUN_DIR` (complete or partial runs alike). Reads
the run's step records and series.json; never imports locust.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from breakpoint.analysis.surge import CONFIRM_S, MIN_REQUESTS_PER_S
from breakpoint.output.report import surge_plots
from breakpoint.output.report.render import _ENV
from breakpoint.plan.profiles import Profile
from breakpoint.runs.store import StoredRun, read_series, write_json
from breakpoint.runs.summary import SUMMARY_FILE
from breakpoint.runs.surge_summary import (
    SurgeView,
    bins_from_dict,
    build_surge_summary,
    surge_view,
)


def publish_surge(
    run_dir: Path,
    stored: StoredRun,
    profiles: Sequence[Profile],
    *,
    report_file: str,
    markdown_file: str,
) -> Path:
    """Analyse the surge in `run_dir` and write its outputs; returns the report's path."""
    info = dict(stored.info)
    series = read_series(run_dir) or {}
    bins = bins_from_dict(series)
    confirm = int((info.get("surge") or {}).get("confirm_s", CONFIRM_S))
    view = surge_view(stored.steps, profiles, bins, series.get("origin"), confirm)
    summary = build_surge_summary(
        info, stored.steps, profiles, view, store_warnings=stored.warnings
    )
    if not series:
        summary["warnings"].append(
            {
                "kind": "no_series",
                "segment": None,
                "step": None,
                "message": "series.json is missing or unreadable: no per-second data, "
                "so no recovery could be judged",
            }
        )
    write_json(run_dir / SUMMARY_FILE, summary)
    (run_dir / markdown_file).write_text(surge_markdown(summary), encoding="utf-8")
    report = run_dir / report_file
    report.write_text(render_surge(summary, view, profiles), encoding="utf-8")
    return report


def _recovery_text(seg: Mapping[str, Any]) -> tuple[str, str]:
    rec = seg.get("recovery") or {}
    if seg["label"] == "recovered":
        block = int(rec.get("resolution_s") or 1)
        # A sparse segment was judged on blocks of seconds: its answer is that coarse.
        coarse = f" (judged on {block}-second blocks)" if block > 1 else ""
        return f"{seg['recovery_s']:.0f} s{coarse}", "ok"
    if seg["label"] == "not_recovered":
        return f"not recovered in the {rec.get('observed_s') or 0:.0f} s watched", "bad"
    return f"no verdict ({rec.get('reason') or 'not measured'})", ""


def _interval_text(seg: Mapping[str, Any]) -> str:
    low, high = seg["interval"]["low_s"], seg["interval"]["high_s"]
    if low is None:
        return "–"
    return f"{low:.0f}–{high:.0f} s" if high is not None else f"{low:.0f} s – not reached"


def headline(summary: Mapping[str, Any]) -> str:
    """One sentence saying no more than was measured."""
    segs = summary["segments"]
    if summary.get("phases") is None:
        return "The run stopped before the drop back to 1X: no recovery was measured."
    stuck = [s["profile"] for s in segs if s["label"] == "not_recovered"]
    done = [s for s in segs if s["label"] == "recovered"]
    parts = []
    if done:
        slowest = max(done, key=lambda s: s["recovery_s"])
        parts.append(
            f"{slowest['profile']} took longest to recover: {slowest['recovery_s']:.0f} s after "
            "the drop back to 1X"
            if len(done) > 1
            else f"{slowest['profile']} recovered {slowest['recovery_s']:.0f} s after the drop"
        )
    if stuck:
        parts.append(f"not recovered before the timeout: {', '.join(stuck)}")
    silent = [s["profile"] for s in segs if s["label"] == "no_verdict"]
    if silent:
        parts.append(f"no verdict (too few requests): {', '.join(silent)}")
    return "; ".join(parts) + "."


def render_surge(summary: Mapping[str, Any], view: SurgeView, profiles: Sequence[Profile]) -> str:
    rows, charts = [], []
    for seg in summary["segments"]:
        text, css = _recovery_text(seg)
        base = seg["phases"]["baseline"] or {}
        rows.append(
            {
                "profile": seg["profile"],
                "recovery_text": text,
                "css": css,
                "interval_text": _interval_text(seg),
                "objective_ms": seg["objective_ms"],
                "baseline_p95": base.get("p95_ms"),
                "surge_p95": seg["surge_p95_ms"],
                "surge_errors": seg["surge_error_rate"],
                "failed": seg["failed"],
                "abandoned": seg["abandoned"],
                "peak_backlog": "–" if seg["peak_backlog"] is None else seg["peak_backlog"],
            }
        )
        bins = view.bins.get(seg["profile"])
        if view.phases is not None and bins:
            svg = surge_plots.timeline(
                bins,
                view.phases,
                seg["objective_ms"],
                seg["recovery_s"],
                min_requests=MIN_REQUESTS_PER_S,
            )
            charts.append(
                {
                    "profile": seg["profile"],
                    "caption": f"{text}. Shaded: the surge (orange), then the recovery "
                    "(green, up to the dashed line when it recovered).",
                    "svg": Markup(svg),
                }
            )
    template = _ENV.get_template("surge.html.j2")
    return template.render(
        summary=summary,
        surge=summary.get("surge") or {},
        headline=headline(summary),
        rows=rows,
        charts=charts,
        no_chart_reason="the run stopped before the drop back to 1X, or series.json is missing",
        warnings=[w["message"] for w in summary["warnings"]],
    )


def surge_markdown(summary: Mapping[str, Any]) -> str:
    """A short digest for CI logs."""
    lines = [f"## breakpoint surge: {summary['label']}", "", headline(summary), ""]
    lines.append("| segment | time to recover | interval | p95 in the surge | failed | abandoned |")
    lines.append("|---|---|---|---|---|---|")
    for seg in summary["segments"]:
        text, _ = _recovery_text(seg)
        p95 = seg["surge_p95_ms"]
        lines.append(
            f"| {seg['profile']} | {text} | {_interval_text(seg)} | "
            f"{'–' if p95 is None else f'{p95:.0f} ms'} | {seg['failed']} | {seg['abandoned']} |"
        )
    return "\n".join(lines) + "\n"
