"""summary.md: a run's short Markdown digest for CI logs and pull-request comments.

Written from the typed summary (runs/summary.py) beside summary.json; every string from the
run is escaped, since viewers may render Markdown as HTML (docs/design.md#summary-contract).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from breakpoint.output.signals_view import markdown_lines
from breakpoint.runs.summary import BreakPoint, RunSummary

MAX_WARNINGS = 10  # more are counted, not listed: report.html has them all
# What a "95% interval" claims, in the report and summary.md (docs/design.md#interval-coverage;
# the coverage measured is benchmarks/README.md's, keep the two in step).
INTERVAL_MEANING = (
    "The interval beside a breaking point is built to contain this target's true breaking point "
    "under this test 95 times in 100; on simulated queues it did in 93-98% of runs "
    "(benchmarks/coverage.py). It covers this run's measurement noise, not a change of the "
    "target or of the test between runs."
)
_NO_BREAK = BreakPoint(None, None, None, None, None)


def _md(text: object) -> str:
    """Text from the run, safe in Markdown that a viewer may render as HTML (and in tables)."""
    return (
        str(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
    )


def _label(b: BreakPoint | None) -> str | None:
    return (b or _NO_BREAK).label


def highest_trusted(summary: RunSummary) -> float | None:
    """The highest multiplier up to which every judged segment was measured by a trusted step
    (its break's low bound when it held), or None when no segment was judged."""
    held = []
    for seg in summary.segments:
        b = seg.breaking or _NO_BREAK
        if b.label == "not_reached":
            top = seg.held_to_multiplier or b.low
            if top is not None:
                held.append(top)
    if held:
        return min(held)
    levels = [
        s.multiplier for s in summary.steps if not s.generator_bound and s.multiplier is not None
    ]
    judged = [s for s in summary.segments if _label(s.breaking) != "no_verdict"]
    return max(levels) if levels and judged else None


def _fmt_break(b: BreakPoint) -> str:
    m = b.multiplier
    if b.label == "no_verdict":
        return "no verdict"
    if b.label == "not_reached":
        return "holds" + (f" (fit: ~{m:.3g}X)" if m else "")
    if m is None:
        return "unknown"
    interval = f" [{b.low:.3g}–{b.high:.3g}]" if b.low is not None and b.high is not None else ""
    return f"{m:.3g}X{interval}"


def _headline(summary: RunSummary) -> str:
    """The first segment to break, or why none did (and how far that is known)."""
    first = summary.first_to_break
    judged = "judged " if any(_label(s.breaking) == "no_verdict" for s in summary.segments) else ""
    if first:
        b = next(s.breaking for s in summary.segments if s.profile == first) or _NO_BREAK
        seg = next(s for s in summary.segments if s.profile == first)
        crossed = f": {_md(b.objective)}" if b.objective else ""
        text = f"**First to break: {_md(first)} at {_fmt_break(b)}**"
        text += f" ({b.criterion}{crossed}, {b.label})"
        if summary.first_lead:
            text += f", {_md(summary.first_lead)}"
        return text + (f". Why: {_md(seg.why)}." if seg.why else ".")
    reached = highest_trusted(summary)
    cap = summary.max_multiplier or 0
    if reached is None:
        return (
            "No segment could be judged: no step measured enough of any segment's requests "
            "with a trusted generator (see the warnings), so nothing is known yet."
        )
    if reached >= cap - 1e-9:
        return f"No {judged}segment broke up to {cap:g}X."
    return (
        f"No {judged}segment broke up to {reached:g}X, but the run stopped before its cap "
        f"of {cap:g}X ({summary.stop_reason or 'see the warnings'}): not evidence "
        "that they hold."
    )


def markdown(summary: RunSummary | Mapping[str, Any]) -> str:
    """A short digest for CI logs and pull-request comments (of a summary, or its document)."""
    plan_for = None if isinstance(summary, RunSummary) else summary.get("roadmap")
    signals = None if isinstance(summary, RunSummary) else summary.get("signals")
    if not isinstance(summary, RunSummary):
        summary = RunSummary.from_dict(summary)
    value, unit = summary.baseline or (0.0, "")
    lines = [
        f"## breakpoint: {_md(summary.label)} ({summary.model} model, 1X = {value:g} {unit})",
        "",
        _headline(summary),
    ]
    unmeasured = [s.profile for s in summary.segments if _label(s.breaking) == "no_verdict"]
    if unmeasured:
        lines.append(
            f"No verdict for {_md(', '.join(unmeasured))}: too few of their requests were "
            "measured at any level; lengthen --hold-s or raise the baseline or their share."
        )
    lines += ["", "| segment | breaks at | label | criterion |", "|---|---|---|---|"]
    for seg in summary.segments:
        b = seg.breaking or _NO_BREAK
        lines.append(f"| {_md(seg.profile)} | {_fmt_break(b)} | {b.label} | {b.criterion or '–'} |")
    if plan_for:
        lines += roadmap_lines(plan_for)
    if any(s.breaking and s.breaking.low is not None for s in summary.segments):
        lines += ["", INTERVAL_MEANING]
    lines += [_md(line) for line in markdown_lines(signals)]
    if summary.warnings:
        lines += ["", "Measurement warnings:"]
        lines += [f"- {_md(w)}" for w in summary.warnings[:MAX_WARNINGS]]
        if len(summary.warnings) > MAX_WARNINGS:
            extra = len(summary.warnings) - MAX_WARNINGS
            lines.append(f"- … and {extra} more (see report.html)")
    return "\n".join(lines) + "\n"


def span(value: float | None, low: float | None, high: float | None) -> str:
    """`2.5x [2.2–2.8]`, `≥ 5x` (a lower bound only), `≤ 1x` (an upper bound only), or `–`."""
    if value is not None:
        both = low is not None and high is not None
        return f"{value:.3g}x" + (f" [{low:.3g}–{high:.3g}]" if both else "")
    if low is not None:
        return f"≥ {low:.3g}x"
    if high is not None:
        return f"≤ {high:.3g}x"
    return "–"


def roadmap_lines(plan_for: Mapping[str, Any]) -> list[str]:
    """summary.md's roadmap: segments ranked by headroom, and the capacity each needs."""
    peak, target = plan_for["expected_peak"], plan_for["target_multiplier"]
    lines = [
        "",
        f"Roadmap (expected peak {peak:g}X, target {target:g}X), least headroom first:",
        "",
        f"| segment | headroom over {peak:g}X | capacity to hold {target:g}X |",
        "|---|---|---|",
    ]
    for row in plan_for["segments"]:
        headroom = span(row["headroom"], row["headroom_low"], row["headroom_high"])
        capacity = span(row["capacity_factor"], row["capacity_low"], row["capacity_high"])
        lines.append(f"| {_md(row['profile'])} | {headroom} | {capacity} |")
    lines += [
        "",
        "Capacity is in copies of today's service (horizontal scaling; each segment's own network "
        "and device time unchanged); below 1x, today's capacity already holds the target.",
    ]
    fixes = plan_for.get("fix_first") or []
    if fixes:
        lines += ["", "What to fix first:", ""]
        lines += [f"{k}. {_md(item['text'])}" for k, item in enumerate(fixes, start=1)]
    return lines
