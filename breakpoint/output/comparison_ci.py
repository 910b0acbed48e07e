"""A comparison as CI reads it: one JUnit test case per segment, and a Markdown step summary.

A regression is a failure with the numbers; an inconclusive segment is skipped (the command
exits 0, but the undecided segment shows); no change and improvement pass
(docs/design.md#ci-outputs).
"""

from __future__ import annotations

from breakpoint.analysis.release import Comparison, SegmentComparison
from breakpoint.output.ci import CaseResult, markdown_table
from breakpoint.output.comparison_view import TABLE_HEADERS, Runs, table_rows, verdict_line
from breakpoint.output.pages import fmt_p, fmt_ratio, fmt_x


def _numbers(seg: SegmentComparison) -> str:
    low = "–" if seg.ratio_low is None else f"{seg.ratio_low:.3f}"
    high = "∞" if seg.ratio_high is None else f"{seg.ratio_high:.3f}"
    text = (
        f"{seg.profile}: base {fmt_x(seg.base_multiplier)} ({seg.base_runs} runs), "
        f"new {fmt_x(seg.new_multiplier)} ({seg.new_runs} runs), new/base "
        f"{fmt_ratio(seg.ratio)} [95% {low}–{high}], p {fmt_p(seg.p_value)}, "
        f"noise band ±{seg.noise_band:.0%}"
    )
    if seg.runs_needed is not None:
        text += f"; about {seg.runs_needed} runs a side would decide"
    return text + (f"; {seg.note}" if seg.note else "")


def junit_cases(comparison: Comparison) -> list[CaseResult]:
    cases = []
    for seg in comparison.segments:
        text = _numbers(seg)
        if seg.verdict == "regression":
            cases.append(CaseResult(seg.profile, failure=f"regression: {text}", output=text))
        elif seg.verdict == "inconclusive":
            cases.append(CaseResult(seg.profile, skipped=f"inconclusive: {text}", output=text))
        else:
            cases.append(CaseResult(seg.profile, output=f"{seg.verdict}: {text}"))
    return cases


def summary_markdown(comparison: Comparison, base: Runs, new: Runs) -> list[str]:
    labels = [", ".join(c) or "?" for c in (comparison.base_labels, comparison.new_labels)]
    return [
        f"### breakpoint compare {labels[0]} vs {labels[1]}",
        "",
        *markdown_table(TABLE_HEADERS, table_rows(comparison, base, new)),
        "",
        verdict_line(comparison),
    ]
