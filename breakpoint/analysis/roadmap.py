"""Roadmap answers from each segment's breaking point (docs/design.md#roadmap): its headroom over
the expected peak, and the capacity the service needs for it to hold a target multiplier.

Capacity is counted in copies of today's service (horizontal scaling: k copies, each serving 1/k
of the traffic). A segment's p95 at load m is then its own network and device time plus the
server's share at m/k, so its whole latency curve stretches by k along the load axis and the
break moves from b to k b: holding the target T takes k = T / b. The interval follows from the
break's (its ends swap). Faster servers (vertical scaling) change the curve's shape and are not
modelled. A segment that held to the top of the run gives bounds only; one without a verdict
gives nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from breakpoint.analysis.findings import Analysis, Break

DEFAULT_TARGET_MULTIPLIER = 10.0
DEFAULT_EXPECTED_PEAK = 1.0  # 1X is the expected normal load; the peak defaults to it

Basis = Literal["break", "held", "none"]


@dataclass(frozen=True)
class Headroom:
    """One segment's roadmap figures. None where the run cannot say (see `basis`)."""

    profile: str
    basis: Basis  # "break": from its breaking point; "held": it never broke; "none": no verdict
    headroom: float | None  # break / expected peak
    headroom_low: float | None
    headroom_high: float | None
    capacity: float | None  # copies of today's service to hold the target
    capacity_low: float | None
    capacity_high: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "basis": self.basis,
            "headroom": self.headroom,
            "headroom_low": self.headroom_low,
            "headroom_high": self.headroom_high,
            "capacity_factor": self.capacity,
            "capacity_low": self.capacity_low,
            "capacity_high": self.capacity_high,
        }


def _ratio(top: float, bottom: float | None) -> float | None:
    return top / bottom if bottom else None


def headroom_of(
    profile: str,
    breaking: Break,
    held_to: float | None,
    *,
    expected_peak: float,
    target: float,
) -> Headroom:
    """Headroom and capacity of one segment from its break (or the level it held to)."""
    if breaking.multiplier is not None:
        b = breaking.multiplier
        return Headroom(
            profile,
            "break",
            b / expected_peak,
            None if breaking.low is None else breaking.low / expected_peak,
            None if breaking.high is None else breaking.high / expected_peak,
            target / b,
            _ratio(target, breaking.high),
            _ratio(target, breaking.low),
        )
    if breaking.label == "not_reached" and held_to:
        # It held at every level up to held_to: at least that much headroom, at most that need.
        return Headroom(
            profile, "held", None, held_to / expected_peak, None, None, None, target / held_to
        )
    return Headroom(profile, "none", None, None, None, None, None, None)


def _rank_key(h: Headroom) -> tuple[int, float]:
    """Least headroom first; held segments after broken ones; no verdict last."""
    if h.headroom is not None:
        return 0, h.headroom
    if h.headroom_low is not None:
        return 1, h.headroom_low
    return 2, 0.0


def roadmap(
    analysis: Analysis,
    *,
    expected_peak: float = DEFAULT_EXPECTED_PEAK,
    target: float = DEFAULT_TARGET_MULTIPLIER,
) -> tuple[Headroom, ...]:
    """Every segment's Headroom, ranked: the least headroom (the first to plan for) first."""
    rows = [
        headroom_of(
            name,
            seg.breaking,
            seg.levels[-1].multiplier if seg.levels else None,
            expected_peak=expected_peak,
            target=target,
        )
        for name, seg in analysis.segments.items()
    ]
    return tuple(sorted(rows, key=_rank_key))


@dataclass(frozen=True)
class RoadmapAsked:
    """What the command line asked to plan for (None: what the run was given, else the default)."""

    expected_peak: float | None = None
    target_multiplier: float | None = None

    @property
    def given(self) -> bool:
        return self.expected_peak is not None or self.target_multiplier is not None


AS_STORED = RoadmapAsked()  # nothing asked: plan for what the run was given


def roadmap_settings(
    info: Mapping[str, Any], asked: RoadmapAsked = AS_STORED
) -> tuple[float, float]:
    """(expected peak, target multiplier): asked on the command line, else as stored with the
    run (run.json `roadmap`), else the defaults (1X, 10X)."""
    saved = info.get("roadmap") or {}
    peak = asked.expected_peak or saved.get("expected_peak") or DEFAULT_EXPECTED_PEAK
    target = asked.target_multiplier or saved.get("target_multiplier")
    return float(peak), float(target or DEFAULT_TARGET_MULTIPLIER)


def roadmap_summary(
    analysis: Analysis,
    segments: Sequence[Mapping[str, Any]],
    *,
    expected_peak: float,
    target: float,
) -> dict[str, Any]:
    """summary.json's `roadmap` object (`segments`: summary.json's own list, for fix_first)."""
    ranked = roadmap(analysis, expected_peak=expected_peak, target=target)
    return {
        "expected_peak": expected_peak,
        "target_multiplier": target,
        "capacity_model": "copies of today's service, each serving an equal share (horizontal "
        "scaling); each segment's network and device time unchanged",
        "segments": [h.to_dict() for h in ranked],
        "fix_first": fix_first(segments, ranked),
    }


# What to fix first, by what used up the segment's objective (analysis/why.py's part, else the
# latency part that grew most by its first failing level).
ACTIONS = {
    "network": "what it downloads and its round trips (page weight, caching, fewer requests)",
    "device": "the work its pages do on the device",
    "server wait": "server capacity, or the endpoint's own work",
    "server": "server capacity, or the endpoint's own work",
}


def fix_first(
    segments: Sequence[Mapping[str, Any]], ranked: Sequence[Headroom]
) -> list[dict[str, Any]]:
    """A short list a product lead can read: the segments that broke, least headroom first,
    each with the endpoint that degrades first, what used up its objective, and where to act.
    `segments` is summary.json's list (with `diagnosis` and `why`)."""
    by_name = {s["profile"]: s for s in segments}
    items: list[dict[str, Any]] = []
    for h in ranked:
        seg = by_name.get(h.profile)
        if h.basis != "break" or seg is None:
            continue
        b = seg["break"]
        diagnosis = seg.get("diagnosis") or {}
        why = seg.get("why") or {}
        endpoint = diagnosis.get("endpoint")
        grew = diagnosis.get("part")
        cause = why.get("part") or {"server": "server wait"}.get(grew or "", grew)
        action = ACTIONS.get(cause or "")
        growth = (diagnosis.get("part_growth_ms") or {}).get(grew) if grew else None
        where = f"{endpoint} degrades first" if endpoint else "its requests degrade together"
        text = f"{h.profile} breaks at {b['multiplier']:.3g}X"
        text += f" on {b['objective']}" if b.get("objective") else ""
        text += f" ({h.headroom:.3g}x the expected peak): {where}"
        if b.get("criterion") == "saturation":
            text += "; the server saturated" + (f" ({cause} was its larger part)" if cause else "")
        elif cause:
            text += f"; its {cause} used up the objective"
        if grew and growth is not None and not str(cause or "").startswith(grew):
            at = diagnosis.get("multiplier") or b["multiplier"]
            text += f" ({grew} time grew {growth:+.0f} ms by {at:.3g}X)"
        text += f". Fix first: {action}." if action else "."
        items.append(
            {
                "profile": h.profile,
                "break": b["multiplier"],
                "endpoint": endpoint,
                "cause": cause,
                "action": action,
                "text": text,
            }
        )
    return items
