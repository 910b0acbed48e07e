"""What the release statistics read from a run, and one run's break for one segment.

The statistics are pure: they take any objects with the attributes below (the runs layer's
typed summary has them), never paths or dicts. A break becomes a point and an interval in log
space; a break that held is censored at the load it held (docs/design.md#comparison).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class BreakLike(Protocol):
    """A segment's stated breaking point (multipliers; None when not known)."""

    @property
    def multiplier(self) -> float | None: ...
    @property
    def low(self) -> float | None: ...
    @property
    def high(self) -> float | None: ...
    @property
    def label(self) -> str | None: ...


class SegmentLike(Protocol):
    @property
    def profile(self) -> str: ...
    @property
    def breaking(self) -> BreakLike | None: ...


class StepLike(Protocol):
    @property
    def multiplier(self) -> float | None: ...


class RunLike(Protocol):
    """One run as the comparison and the history read it."""

    @property
    def name(self) -> str: ...  # how messages name the run
    @property
    def run_id(self) -> str | None: ...
    @property
    def label(self) -> str | None: ...
    @property
    def created_at(self) -> float | None: ...
    @property
    def git_rev(self) -> str | None: ...
    @property
    def status(self) -> str | None: ...
    @property
    def max_multiplier(self) -> float | None: ...
    @property
    def segments(self) -> Sequence[SegmentLike]: ...
    @property
    def steps(self) -> Sequence[StepLike]: ...


@dataclass(frozen=True)
class LogBreak:
    """One run's breaking point in log space; a censored break is the interval [cap, inf)."""

    point: float  # log multiplier; log cap when censored (a lower bound)
    lower: float
    upper: float  # inf when censored
    censored: bool
    status: str
    short: bool = False  # censored below the run's cap: it held only as far as the run went


# Multipliers within this relative distance of the cap count as the cap (refinement rounding).
_CAP_TOLERANCE = 1e-3
_COMPLETE = ("complete", None)  # summary `status` of a run that ran its plan (None: not recorded)


def positive(value: float | None) -> float | None:
    """The value when it is a positive finite number, else None."""
    if value is None or not math.isfinite(value):
        return None
    return value if value > 0 else None


def held_bound(raw: BreakLike) -> float | None:
    """The load a not_reached break held to: its low bound (the last trusted step, or the fit's
    lower bound beyond it), else the largest multiplier it names."""
    low = positive(raw.low)
    if low is not None:
        return low
    known = [v for v in (positive(raw.multiplier), positive(raw.high)) if v is not None]
    return max(known) if known else None


def _below(value: float, cap: float) -> bool:
    return value < cap * (1 - _CAP_TOLERANCE)


def _held(raw: BreakLike, run: RunLike) -> tuple[float, bool] | None:
    """The load a not_reached break held to, and whether the run stopped short of its cap.

    Short: the run did not complete, or its steps or its last trusted step (the break's low
    bound) stayed below `max_multiplier`. A run that held to its cap counts at the cap; one
    that stopped short counts at the lowest of its bound and its highest step, never at a fit's
    estimate beyond what it measured. None when nothing was held (no trusted step).
    """
    cap = positive(run.max_multiplier)
    if cap is None:  # a summary without its cap: trust the break's own bound
        held = held_bound(raw)
        if held is None:
            return None
        return held, run.status not in _COMPLETE
    # With the cap known, a break without a low bound had no trusted step: its multiplier, if
    # any, is a fit's guess, not a load the run held.
    held = positive(raw.low)
    if held is None:
        return None
    steps = [m for step in run.steps if (m := positive(step.multiplier)) is not None]
    top = min(max(steps), cap) if steps else cap
    short = run.status not in _COMPLETE or _below(held, cap) or _below(top, cap)
    return (min(held, top), True) if short else (cap, False)


def log_break(raw: BreakLike | None, run: RunLike) -> LogBreak | None:
    """None when the break carries no usable number (e.g. a run without a trusted step)."""
    if raw is None:
        return None
    status = raw.label or ""
    if status == "not_reached":
        held = _held(raw, run)
        if held is None:
            return None
        point = math.log(held[0])
        return LogBreak(point, point, math.inf, True, status, short=held[1])
    multiplier, low, high = (positive(v) for v in (raw.multiplier, raw.low, raw.high))
    if multiplier is None:
        return None
    known = [v for v in (multiplier, low, high) if v is not None]
    return LogBreak(math.log(multiplier), math.log(min(known)), math.log(max(known)), False, status)


def segment_breaks(run: RunLike) -> dict[str, BreakLike | None]:
    """Each segment's stated break in one run (the last entry wins for a repeated profile)."""
    return {seg.profile: seg.breaking for seg in run.segments}
