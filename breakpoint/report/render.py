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

from ..config import same_level
from ..model import Analysis, SegmentAnalysis
from ..profiles import Profile
from ..results import StepResult
from . import plots

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


_ENV.filters["x"] = _fmt_x
_ENV.filters["ms"] = _fmt_ms
_ENV.filters["pct"] = lambda v: "–" if v is None else f"{v:.1%}"


def _break_text(seg: SegmentAnalysis, max_multiplier: float) -> str:
    b = seg.breaking
    if b.label == "not_reached":
        return f"holds up to {max_multiplier:g}X" + (
            f" (fit suggests ~{b.multiplier:.3g}X)" if b.multiplier else ""
        )
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
    )


def _nearest_step(steps: Sequence[StepResult], multiplier: float | None) -> StepResult | None:
    usable = [s for s in steps if not s.generator.bound]
    if not usable or multiplier is None:
        return None
    return min(usable, key=lambda s: (abs(s.multiplier - multiplier), s.partial))


def _decomposition(
    steps: Sequence[StepResult], analysis: Analysis
) -> tuple[list[str], list[dict[str, float]]]:
    labels: list[str] = []
    parts: list[dict[str, float]] = []
    top = max((s.multiplier for s in steps if not s.generator.bound), default=None)
    for name, seg in analysis.segments.items():
        at_break = seg.first_fail
        for tag, m in (("1X", 1.0), ("break", at_break), ("top", top)):
            step = _nearest_step(steps, m)
            if step is None or name not in step.segments:
                continue
            if tag == "break" and (m is None or same_level(m, 1.0) or (top and same_level(m, top))):
                continue
            p = step.segments[name].parts_ms
            if not p:
                continue
            labels.append(f"{name} @{step.multiplier:g}X")
            parts.append(dict(p))
    return labels, parts


def _errors_table(steps: Sequence[StepResult]) -> tuple[list[str], list[dict[str, Any]]]:
    kinds: list[str] = []
    rows = []
    for s in steps:
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
        if total:
            rows.append(
                {
                    "multiplier": s.multiplier,
                    "index": s.index,
                    "requests": requests,
                    "errors": total,
                }
            )
    return kinds, rows


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
            s.breaking.label == "not_reached",
            s.breaking.multiplier if s.breaking.multiplier is not None else math.inf,
        ),
    )
    ladder_rows = [
        plots.LadderRow(
            s.profile, s.breaking.multiplier, s.breaking.low, s.breaking.high, s.breaking.label
        )
        for s in ordered
    ]
    # "Holds at 10X" needs evidence at 10X: a segment not reached below a lower cap says nothing.
    holding_at_10 = sum(
        1
        for s in analysis.segments.values()
        if (s.breaking.label == "not_reached" and max_multiplier >= 10.0)
        or (s.breaking.label != "not_reached" and (s.breaking.low or 0) > 10.0)
    )
    first = analysis.segments.get(analysis.first_to_break or "")
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
    dec_labels, dec_parts = _decomposition(steps, analysis)
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
        "max_multiplier": max_multiplier,
        "ladder_svg": Markup(
            plots.ladder(
                ladder_rows, max_multiplier=max_multiplier, expected_multiplier=expected_multiplier
            )
        ),
        "curves": curves,
        "decomposition_svg": Markup(plots.decomposition(dec_labels, dec_parts))
        if dec_parts
        else None,
        "throughput_svg": Markup(plots.throughput(totals_x, offered, completed, err))
        if steps
        else None,
        "error_kinds": kinds,
        "error_rows": error_rows,
        "warnings": summary.get("warnings", []),
        "comparison": comparison,
        "break_text": lambda s: _break_text(s, max_multiplier),
    }
    return _ENV.get_template("report.html.j2").render(**context)
