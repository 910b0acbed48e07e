"""Render a run's analysis into one self-contained HTML file (inline SVG and CSS, no network).

Jinja2 with autoescape on: every string that came from the run (endpoint names, labels, error
messages, profile descriptions) is escaped. Charts are matplotlib SVGs produced by plots.py and
inserted as markup we generated ourselves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from breakpoint.analysis.criteria import MIN_REQUESTS
from breakpoint.analysis.findings import Analysis, SegmentAnalysis
from breakpoint.output.digest import INTERVAL_MEANING, span
from breakpoint.output.report import plots
from breakpoint.output.signals_view import scrape_line, signal_lines
from breakpoint.output.signals_view import table as signals_table
from breakpoint.plan.profiles import Profile
from breakpoint.plan.steps import same_level
from breakpoint.results import StepResult

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt_x(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}X"


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _fmt_num(value: Any) -> str:
    """Numbers from run.json as people write them (333.3333333 -> 333.333, 400.0 -> 400)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:g}"


_ENV.filters["x"] = _fmt_x
_ENV.filters["ms"] = _fmt_ms
_ENV.filters["num"] = _fmt_num
_ENV.filters["pct"] = lambda v: "–" if v is None else f"{v:.1%}"


def _held_to(seg: SegmentAnalysis) -> float | None:
    """The highest load level at which the segment was measured with a trusted step."""
    return seg.levels[-1].multiplier if seg.levels else None


def _objective_lines(ordered: Sequence[SegmentAnalysis]) -> list[str]:
    """The segments' objectives, once when every segment has the same ones."""
    sets = {s.profile: ", ".join(o.label for o in s.slo.objectives) for s in ordered}
    if not any(sets.values()):
        return []
    if len(set(sets.values())) == 1:
        return [f"{next(iter(sets.values()))} for every segment"]
    return [f"{name}: {text or 'p95 SLO'}" for name, text in sets.items()]


def _break_text(seg: SegmentAnalysis, max_multiplier: float) -> str:
    b = seg.breaking
    if b.label == "no_verdict":
        return b.method or "no verdict: too few of its requests were measured"
    if b.label == "not_reached":
        held = _held_to(seg)
        if held is None:
            return "not measured"
        text = f"holds up to {held:.3g}X"
        if held < max_multiplier and not same_level(held, max_multiplier):
            text += f" (the run stopped below its {max_multiplier:g}X cap)"
        return text + (f" (fit suggests ~{b.multiplier:.3g}X)" if b.multiplier else "")
    if b.multiplier is None:
        return "unknown"
    interval = (
        f" (95% interval {b.low:.3g}–{b.high:.3g}X)"
        if b.low is not None and b.high is not None
        else ""
    )
    return f"{b.multiplier:.3g}X{interval}"


def _curve_data(seg: SegmentAnalysis) -> plots.CurveData:
    levels = seg.levels
    measured = [lv for lv in levels if lv.p95_median_ms is not None]
    curve = [c for c in seg.curve if c.p95_ms is not None]
    band = [c for c in curve if c.low_ms is not None and c.high_ms is not None]
    b = seg.breaking
    return plots.CurveData(
        segment=seg.profile,
        slo_ms=seg.slo.p95_ms,
        measured_x=[lv.multiplier for lv in measured],
        measured_p95=[lv.p95_median_ms or 0.0 for lv in measured],
        measured_low=[lv.p95_min_ms or lv.p95_median_ms or 0.0 for lv in measured],
        measured_high=[lv.p95_max_ms or lv.p95_median_ms or 0.0 for lv in measured],
        failed_x=[lv.multiplier for lv in levels if not lv.passed],
        fit_x=[c.multiplier for c in curve],
        fit_p95=[c.p95_ms or 0.0 for c in curve],
        band_low=[c.low_ms or 0.0 for c in band] if len(band) == len(curve) else [],
        band_high=[c.high_ms or 0.0 for c in band] if len(band) == len(curve) else [],
        break_x=b.multiplier if b.label != "not_reached" else None,
        break_low=b.low if b.label != "not_reached" else None,
        break_high=b.high if b.label != "not_reached" else None,
        label=b.label,
        fit_used=seg.fit.ok,
    )


def _nearest_step(steps: Sequence[StepResult], multiplier: float | None) -> StepResult | None:
    usable = [s for s in steps if not s.generator.bound]
    if not usable or multiplier is None:
        return None
    return min(usable, key=lambda s: (abs(s.multiplier - multiplier), s.partial))


def _decomposition(steps: Sequence[StepResult], analysis: Analysis) -> list[plots.PartsColumn]:
    """Each segment's latency parts at 1X, at its first failing level and at the top step."""
    columns: list[plots.PartsColumn] = []
    top = max((s.multiplier for s in steps if not s.generator.bound), default=None)
    for name, seg in analysis.segments.items():
        at_break = seg.first_fail
        seen: list[float] = []
        for tag, m in (("1X", 1.0), ("break", at_break), ("top", top)):
            step = _nearest_step(steps, m)
            if step is None or name not in step.segments:
                continue
            if tag == "break" and (m is None or same_level(m, 1.0) or (top and same_level(m, top))):
                continue
            if any(same_level(step.multiplier, s) for s in seen):
                continue
            p = step.segments[name].parts_ms
            if not p:
                continue
            seen.append(step.multiplier)
            columns.append(plots.PartsColumn(name, step.multiplier, dict(p)))
    return columns


def _errors_table(steps: Sequence[StepResult]) -> tuple[list[str], list[dict[str, Any]]]:
    """Errors by kind per load level (repeats added up), in order of load."""
    kinds: list[str] = []
    rows: list[dict[str, Any]] = []
    for s in sorted(steps, key=lambda s: (s.multiplier, s.index)):
        total: dict[str, int] = {}
        requests = 0
        for seg in s.segments.values():
            requests += seg.requests + seg.unfinished
            for k, v in seg.errors.items():
                total[k] = total.get(k, 0) + v
            if seg.unfinished:
                total["unfinished"] = total.get("unfinished", 0) + seg.unfinished
        for k in total:
            if k not in kinds:
                kinds.append(k)
        if rows and same_level(rows[-1]["multiplier"], s.multiplier):
            row = rows[-1]
            row["steps"] += 1
            row["requests"] += requests
            for k, v in total.items():
                row["errors"][k] = row["errors"].get(k, 0) + v
        else:
            rows.append(
                {"multiplier": s.multiplier, "steps": 1, "requests": requests, "errors": total}
            )
    for row in rows:
        row["rate"] = sum(row["errors"].values()) / row["requests"] if row["requests"] else 0.0
    if not kinds:
        return [], []
    return kinds, rows


def _roadmap_rows(plan_for: Mapping[str, Any] | None) -> list[tuple[str, str, str, str]]:
    """(segment, headroom, capacity, basis) per segment, least headroom first."""
    if not plan_for:
        return []
    basis = {"break": "its breaking point", "held": "it held to the top", "none": "no verdict"}
    return [
        (
            row["profile"],
            span(row["headroom"], row["headroom_low"], row["headroom_high"]),
            span(row["capacity_factor"], row["capacity_low"], row["capacity_high"]),
            basis.get(row["basis"], row["basis"]),
        )
        for row in plan_for["segments"]
    ]


def render_html(
    *,
    info: Mapping[str, Any],
    summary: Mapping[str, Any],
    steps: Sequence[StepResult],
    analysis: Analysis,
    profiles: Sequence[Profile],
    max_multiplier: float,
    comparison: Mapping[str, Any] | None = None,
    expected_multiplier: float | None = None,
) -> str:
    """The whole report page as a string."""
    by_name = {p.name: p for p in profiles}
    ordered = sorted(
        analysis.segments.values(),
        key=lambda s: (
            s.breaking.label in ("not_reached", "no_verdict"),
            s.breaking.label == "no_verdict",
            s.breaking.multiplier if s.breaking.multiplier is not None else math.inf,
        ),
    )
    ladder_rows = [
        plots.LadderRow(
            s.profile,
            s.breaking.multiplier,
            s.breaking.low,
            s.breaking.high,
            s.breaking.label,
            _held_to(s),
        )
        for s in ordered
    ]
    # "Nothing broke" is only true up to the level *every* judged segment was measured at with
    # a trusted step, whatever the plan's cap was; segments never judged are named apart.
    held = [h for s in ordered if (h := _held_to(s)) is not None]
    tested_to = min(held) if held else None
    unmeasured = [s.profile for s in ordered if s.breaking.label == "no_verdict"]
    holding_at_10 = sum(
        1
        for s in analysis.segments.values()
        if (s.breaking.label == "not_reached" and (_held_to(s) or 0) >= 10.0)
        or (s.breaking.label != "not_reached" and (s.breaking.low or 0) > 10.0)
    )
    first = analysis.segments.get(analysis.first_to_break or "")
    others = [
        s.breaking.multiplier
        for s in ordered
        if s is not first
        and s.breaking.label not in ("not_reached", "no_verdict")
        and s.breaking.multiplier
    ]
    curves = [
        {
            "name": s.profile,
            "profile": by_name.get(s.profile),
            "svg": Markup(plots.curve(_curve_data(s), plots.PALETTE[i % len(plots.PALETTE)])),
            "text": _break_text(s, max_multiplier),
            "seg": s,
        }
        for i, s in enumerate(ordered)
    ]
    columns = _decomposition(steps, analysis)
    totals_x = [s.multiplier for s in steps]
    offered = [sum(seg.offered_rps for seg in s.segments.values()) for s in steps]
    completed = [sum(seg.completed_rps for seg in s.segments.values()) for s in steps]
    err = [
        (
            sum(seg.error_count + seg.unfinished for seg in s.segments.values())
            / max(1, sum(seg.requests + seg.unfinished for seg in s.segments.values()))
        )
        for s in steps
    ]
    kinds, error_rows = _errors_table(steps)
    context = {
        "info": info,
        "summary": summary,
        "steps": steps,
        "analysis": analysis,
        "profiles": profiles,
        "by_name": by_name,
        "ordered": ordered,
        "first": first,
        "first_text": _break_text(first, max_multiplier) if first else "",
        "holding_at_10": holding_at_10,
        "tested_to": tested_to,
        "unmeasured": unmeasured,
        "others_range": (min(others), max(others)) if others else None,
        "not_reached": sum(1 for s in ordered if s.breaking.label == "not_reached"),
        "max_multiplier": max_multiplier,
        "roadmap": summary.get("roadmap"),
        "roadmap_rows": _roadmap_rows(summary.get("roadmap")),
        "min_requests": MIN_REQUESTS,
        "ladder_svg": Markup(
            plots.ladder(
                ladder_rows, max_multiplier=max_multiplier, expected_multiplier=expected_multiplier
            )
        ),
        "curves": curves,
        "curve_legend_svg": Markup(
            plots.curve_legend(unused_fit=any(not s.fit.ok and s.curve for s in ordered))
        )
        if curves
        else None,
        "decomposition_svg": Markup(plots.decomposition(columns)) if columns else None,
        "throughput_svg": Markup(plots.throughput(totals_x, offered, completed, err))
        if steps
        else None,
        "error_kinds": kinds,
        "error_rows": error_rows,
        "warnings": summary.get("warnings", []),
        "comparison": comparison,
        "break_text": lambda s: _break_text(s, max_multiplier),
        # analysis/why.py, as stored in summary.json
        "first_lead": (summary.get("first_lead") or {}).get("text"),
        "why_parts": {
            seg["profile"]: f"{seg['why']['part']} ({seg['why'].get('own_share', 0):.0%})"
            for seg in summary.get("segments", [])
            if isinstance(seg.get("why"), dict)
        },
        "objective_lines": _objective_lines(ordered),
        # The server's own signals (--metrics-url), as stored in summary.json.
        "signals": summary.get("signals"),
        "signal_lines": signal_lines(summary.get("signals")),
        "signals_scrape": scrape_line(summary["signals"]) if summary.get("signals") else "",
        "signals_table": signals_table(summary.get("signals")),
        "whys": {
            seg["profile"]: seg["why"]["text"]
            for seg in summary.get("segments", [])
            if isinstance(seg.get("why"), dict)
        },
        "interval_meaning": INTERVAL_MEANING,
    }
    return _ENV.get_template("report.html.j2").render(**context)
