"""Required breaking points as a gate: does each segment break at or above what it must hold?

Pure: runs in (the same `RunLike` as the comparison), one verdict per requirement out. A
requirement passes only when the 95% interval's low end is at or above it, fails when the
high end is below it, and is otherwise inconclusive, with the runs (or the longer holds) that
would decide it (docs/design.md#requirements).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from scipy import stats

from breakpoint.analysis.release_input import LogBreak, RunLike, log_break, segment_breaks
from breakpoint.errors import ExitStatus

Outcome = Literal["pass", "fail", "inconclusive"]

ALPHA = 0.05  # the interval is 95%
POWER = 0.80  # for the runs that would decide
MAX_RUNS = 100  # beyond this, more runs are not a practical answer
_Z = float(stats.norm.ppf(1 - ALPHA / 2))
_Z_POWER = float(stats.norm.ppf(POWER))


@dataclass(frozen=True)
class RequirementResult:
    """One segment's break against its requirement, with the numbers behind the verdict."""

    profile: str
    required: float  # the multiplier the segment must hold
    verdict: Outcome
    multiplier: float | None  # the break over the runs (geometric mean); None if none usable
    low: float | None  # the 95% interval; high None when open above (a run held)
    high: float | None
    runs: int  # runs with a usable break
    status: str  # bracketed, extrapolated, not_reached, mixed, or no_verdict
    runs_needed: int | None = None  # inconclusive: runs in all that would decide
    hold_factor: float | None = None  # inconclusive: holds this many times longer would decide
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckResult:
    """Every requirement of one `check`, over the runs of one run id or label."""

    requirements: tuple[RequirementResult, ...]
    run_ids: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(r.verdict == "pass" for r in self.requirements)

    def exit_code(self) -> int:
        """0 when every requirement is shown to hold; 3 otherwise (failed or undecided)."""
        return int(ExitStatus.OK if self.passed else ExitStatus.REGRESSION)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "exit_code": self.exit_code(),
            "requirements": [r.to_dict() for r in self.requirements],
            "run_ids": list(self.run_ids),
            "warnings": list(self.warnings),
        }


def _fmt(x: float) -> str:
    return f"×{x:.3g}"


def _pooled(breaks: Sequence[LogBreak]) -> tuple[float, float, float, float, float, bool]:
    """Centre, interval ends, the per-run spreads below and above (log space), and whether the
    spread between runs (rather than each run's own interval) set them.

    One run: its own interval. Several: the mean of their log breaks, with a standard error
    from the larger of the runs' own intervals (read as 95% normal intervals) and the spread
    between them, over sqrt(n); t quantiles when the spread between runs sets it.
    """
    n = len(breaks)
    centre = sum(b.point for b in breaks) / n
    below = math.sqrt(sum(((b.point - b.lower) / _Z) ** 2 for b in breaks) / n)
    above = math.sqrt(sum(((b.upper - b.point) / _Z) ** 2 for b in breaks) / n)
    if n == 1:
        return centre, breaks[0].lower, breaks[0].upper, below, above, False
    between = math.sqrt(sum((b.point - centre) ** 2 for b in breaks) / (n - 1))
    between_runs = between > max(below, above)
    quantile = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) if between_runs else _Z
    below, above = max(below, between), max(above, between)
    return (
        centre,
        centre - quantile * below / math.sqrt(n),
        centre + quantile * above / math.sqrt(n),
        below,
        above,
        between_runs,
    )


def _undecided(
    result: RequirementResult,
    centre: float,
    spread: float,
    n: int,
    required: float,
    *,
    between_runs: bool,
) -> RequirementResult:
    """An inconclusive verdict with what would decide it, if the break is where estimated."""
    distance = abs(centre - math.log(required))
    if distance < 1e-3 or spread <= 0:
        why = "the estimate sits at the requirement: no practical number of runs decides it"
        return _with(result, message=f"{result.message}; {why}")
    runs = math.ceil(((_Z + _Z_POWER) * spread / distance) ** 2)
    # Longer holds narrow a run's own interval about as the square root of its requests (its
    # sampling noise); they cannot beat the spread between runs.
    hold = ((_Z + _Z_POWER) * spread / distance) ** 2 / max(n, 1)
    if runs <= MAX_RUNS:
        more = max(runs - n, 1)
        advice = f"about {more} more run{'s' if more != 1 else ''} (--repeat) would decide it"
    else:
        advice = f"more than {MAX_RUNS} runs would be needed to decide it"
    holds_help = not between_runs and 1 < hold <= 16
    if holds_help:
        advice += (
            f", or holds about {hold:.1f}x longer (--hold-s) if its interval is sampling noise"
        )
    advice += " (if the break is where this estimate puts it)"
    return _with(
        result,
        runs_needed=min(max(runs, n + 1), MAX_RUNS + 1),
        hold_factor=round(hold, 2) if holds_help else None,
        message=f"{result.message}; {advice}",
    )


def _with(result: RequirementResult, **changes: Any) -> RequirementResult:
    return RequirementResult(**{**result.to_dict(), **changes})


def check_segment(profile: str, required: float, breaks: Sequence[LogBreak]) -> RequirementResult:
    """One segment's verdict against `required` from its breaks (one per run)."""
    log_required = math.log(required)
    if not breaks:
        return RequirementResult(
            profile, required, "inconclusive", None, None, None, 0, "no_verdict",
            message=f"no run measured {profile} well enough to place its break (no verdict)",
        )  # fmt: skip
    statuses = {b.status for b in breaks}
    status = statuses.pop() if len(statuses) == 1 else "mixed"
    n = len(breaks)
    held = [b for b in breaks if b.censored]
    if held:
        # A run that held counts from the load it held: [held, inf). The others by their
        # intervals; the low end is the lowest of all (every run must show it).
        low = min(b.lower for b in breaks)
        high = max(b.upper for b in breaks)
        point = math.exp(sum(b.point for b in breaks) / n)
        result = RequirementResult(
            profile, required, "inconclusive", None if len(held) == n else point,
            math.exp(low), None if math.isinf(high) else math.exp(high), n, status,
        )  # fmt: skip
        if low >= log_required - 1e-9:
            return _with(result, verdict="pass", message=f"held to at least {_fmt(math.exp(low))}")
        if high < log_required:
            return _with(result, verdict="fail", message=f"broke below {_fmt(math.exp(high))}")
        short = [b for b in held if b.point < log_required]
        why = (
            f"held only to {_fmt(math.exp(min(b.point for b in short)))} (the run's cap or "
            f"where it stopped): run with --max-multiplier of at least {required:g}"
            if short
            else "some runs broke below the requirement"
        )
        return _with(result, message=why)
    centre, low, high, below, above, between_runs = _pooled(breaks)
    result = RequirementResult(
        profile, required, "inconclusive", math.exp(centre), math.exp(low), math.exp(high), n,
        status,
    )  # fmt: skip
    interval = f"{_fmt(math.exp(centre))} [{_fmt(math.exp(low))}–{_fmt(math.exp(high))}]"
    if status == "extrapolated":
        interval += " (extrapolated beyond the last step)"
    if low >= log_required - 1e-9:
        return _with(result, verdict="pass", message=f"breaks at {interval}")
    if high < log_required:
        return _with(
            result, verdict="fail", message=f"breaks at {interval}, below {_fmt(required)}"
        )
    spread = below if centre >= log_required else above
    result = _with(result, message=f"breaks at {interval}, which straddles {_fmt(required)}")
    return _undecided(result, centre, spread, n, required, between_runs=between_runs)


def check_requirements(runs: Sequence[RunLike], required: Mapping[str, float]) -> CheckResult:
    """Each required segment's break over the runs against its requirement, in the order given.

    A run without a usable break for a segment (no trusted step) is skipped with a warning.
    """
    warnings: list[str] = []
    results = []
    for profile, multiplier in required.items():
        if not multiplier > 0:
            raise ValueError(f"{profile}: a required multiplier must be > 0, got {multiplier}")
        breaks = []
        for run in runs:
            raw = segment_breaks(run).get(profile)
            parsed = log_break(raw, run) if raw is not None else None
            if parsed is None:
                warnings.append(f"run {run.name}: no usable break for {profile}, skipped")
            else:
                breaks.append(parsed)
        results.append(check_segment(profile, multiplier, breaks))
    return CheckResult(tuple(results), tuple(run.name for run in runs), tuple(warnings))
