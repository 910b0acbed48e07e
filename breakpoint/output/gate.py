"""`breakpoint check`: a run or label against required breaking points, as a CI gate.

Resolves the runs (as `compare` does), gathers the requirements (`min_break` of the profiles
the runs recorded, overridden by `--require`), decides with analysis/requirements.py, prints one
line per segment and the verdict, and writes JUnit XML and the GitHub step summary when asked
(docs/design.md#requirements). Never imports locust.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from breakpoint.analysis.requirements import CheckResult, RequirementResult, check_requirements
from breakpoint.errors import UsageError
from breakpoint.output.ci import CaseResult, append_step_summary, markdown_table, write_junit
from breakpoint.output.comparison import SideRun, load_side
from breakpoint.output.pages import fmt_x, table
from breakpoint.runs.store import load_run
from breakpoint.runs.summary import differences

Say = Callable[[str], None]
HEADERS = ("segment", "required", "break [95%]", "runs", "verdict")


def _recorded_requirements(runs: Sequence[SideRun]) -> dict[str, float]:
    """`min_break` of each profile as the runs recorded it in run.json (the last run wins)."""
    found: dict[str, float] = {}
    for run in runs:
        for profile in load_run(run.path).info.get("profiles") or []:
            value = profile.get("min_break") if isinstance(profile, Mapping) else None
            if isinstance(value, int | float) and value > 0:
                found[str(profile.get("name"))] = float(value)
    return found


def _interval(r: RequirementResult) -> str:
    if r.multiplier is None and r.low is None:
        return "–"
    if r.multiplier is None:  # every run held: a lower bound only
        return f"≥{fmt_x(r.low)}"
    high = "∞" if r.high is None else fmt_x(r.high)
    return f"{fmt_x(r.multiplier)} [{fmt_x(r.low)}–{high}]"


def _rows(result: CheckResult) -> list[list[str]]:
    return [
        [r.profile, f"≥{fmt_x(r.required)}", _interval(r), str(r.runs), r.verdict]
        for r in result.requirements
    ]


def _verdict_line(result: CheckResult) -> str:
    failed = [r.profile for r in result.requirements if r.verdict == "fail"]
    undecided = [r.profile for r in result.requirements if r.verdict == "inconclusive"]
    if result.passed:
        n = len(result.requirements)
        return f"verdict: PASS: all {n} required segments hold their requirement"
    parts = []
    if failed:
        parts.append(f"FAIL in {', '.join(failed)}")
    if undecided:
        parts.append(f"not shown to hold (inconclusive) in {', '.join(undecided)}")
    return f"verdict: {'; '.join(parts)} – exit 3"


def _case(r: RequirementResult) -> CaseResult:
    text = f"{r.profile}: required ≥{fmt_x(r.required)}: {r.message}"
    if r.verdict == "pass":
        return CaseResult(r.profile, output=text)
    return CaseResult(r.profile, failure=f"{r.verdict}: {text}", output=text)


def run_check(
    ref: str,
    required: Mapping[str, float],
    *,
    out_dir: Path,
    junit: Path | None = None,
    step_summary: Path | None = None,
    say: Say = print,
) -> int:
    """Check the runs `ref` names against the requirements; returns the exit code (0 or 3)."""
    runs = load_side(out_dir, ref, "checked", say)
    summaries = [r.summary for r in runs]
    requirements = {**_recorded_requirements(runs), **required}
    if not requirements:
        raise UsageError(
            f"{ref}: nothing to check: give --require SEGMENT=MULT (e.g. --require "
            "android-lowend-3g=5), or set min_break in a profile's TOML"
        )
    measured = {seg.profile for s in summaries for seg in s.segments}
    unknown = [p for p in requirements if p not in measured]
    if unknown:
        origin = "--require" if unknown[0] in required else "min_break of profile"
        raise UsageError(
            f"{origin} {unknown[0]}: no such segment in {ref} "
            f"(its segments: {', '.join(sorted(measured)) or 'none'})"
        )
    for reason in differences(summaries, []):
        say(f"warning: the runs of {ref} differ: {reason}")
    result = check_requirements(summaries, requirements)
    say(f"checked: {ref} ({len(runs)} run{'s' if len(runs) != 1 else ''})")
    for line in table(HEADERS, _rows(result), right={1, 2, 3}):
        say(line)
    for warning in result.warnings:
        say(f"warning: {warning}")
    for r in result.requirements:
        say(f"{r.verdict}: {r.profile}: {r.message}")
    verdict = _verdict_line(result)
    say(verdict)
    if junit is not None:
        cases = [_case(r) for r in result.requirements]
        write_junit(junit, f"breakpoint check {ref}", cases, classname="breakpoint.check")
        say(f"junit: {junit}")
    if step_summary is not None:
        lines = [f"### breakpoint check {ref}", "", *markdown_table(HEADERS, _rows(result))]
        append_step_summary(step_summary, [*lines, "", verdict])
    return result.exit_code()
