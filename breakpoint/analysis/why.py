"""Why a segment breaks where it does, and how far ahead of the others the first one breaks.

Under one product-wide objective every segment waits in the same server queue; what differs is
how much of the objective its own network and device already take at low load. `explain` says,
for a segment that broke, how much of the objective its own network and device took at the
lowest level: half or more, and they are why it broke (the server's wait only finished it); less,
and the server's wait is (docs/design.md#why-first). `lead` compares the first segment to break
with the next one: how much earlier, and whether their intervals are apart (only then is the order
a finding). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from breakpoint.analysis.findings import Analysis, Level, SegmentAnalysis
from breakpoint.plan.objectives import PAGE_VIEW
from breakpoint.plan.steps import same_level
from breakpoint.results import StepResult

PART_NAMES = {"network": "network", "server": "server wait", "device": "device"}


@dataclass(frozen=True)
class Why:
    """What a segment's latency was made of at its lowest level and at its first failure, against
    the objective it crossed."""

    part: str  # "network", "device" or "server wait": what used up the objective
    base_ms: Mapping[str, float]  # mean per request at the lowest level
    fail_ms: Mapping[str, float]  # ... at the first failing step
    base_multiplier: float
    fail_multiplier: float
    threshold_ms: float  # of the objective crossed (or the p95 SLO)
    endpoint: str | None = None  # the parts are this endpoint's (its objective crossed)

    @property
    def own_share(self) -> float:
        """The share of the objective its own network and device took at the lowest level."""
        return (self.base_ms.get("network", 0.0) + self.base_ms.get("device", 0.0)) / (
            self.threshold_ms
        )

    @property
    def text(self) -> str:
        grew = self.fail_ms.get("server", 0.0) - self.base_ms.get("server", 0.0)
        own = (
            f"at {self.base_multiplier:.3g}X its network and device already took "
            f"{self.own_share:.0%} of the {self.threshold_ms:.0f} ms objective (network "
            f"{self.base_ms.get('network', 0.0):.0f} ms, device "
            f"{self.base_ms.get('device', 0.0):.0f} ms, mean per "
            f"{self.endpoint + ' ' if self.endpoint else ''}request)"
        )
        then = f"the server's wait grew {grew:+.0f} ms by {self.fail_multiplier:.3g}X"
        return f"{self.part}: {own}; {then}"

    def as_dict(self) -> dict[str, object]:
        return {"part": self.part, "own_share": self.own_share, "text": self.text}


# At or above this share of the objective taken by its own network and device at low load, a
# segment breaks because of them (the server's wait only finishes it); below, the wait did it.
OWN_SHARE_BREAKS = 0.5


def explain(steps: Sequence[StepResult], seg: SegmentAnalysis) -> Why | None:
    """Why this segment broke (None when it did not, or its parts were not measured)."""
    if seg.first_fail_step is None or not seg.levels:
        return None
    by_index = {s.index: s for s in steps}
    fail = by_index.get(seg.first_fail_step)
    base_step = by_index.get(min(seg.levels[0].steps))
    if fail is None or base_step is None:
        return None
    crossed = [o for o in seg.slo.objectives if o.label == seg.breaking.objective]
    threshold = crossed[0].threshold_ms if crossed else seg.slo.p95_ms
    # An endpoint's objective is weighed against that endpoint's own parts: a 200 KB asset's
    # download is no part of an API call's time (steps recorded before 2026-11-30 lack them).
    endpoint = crossed[0].key if crossed and crossed[0].target != PAGE_VIEW else None
    base_parts, fail_parts = (_parts(step, seg.profile, endpoint) for step in (base_step, fail))
    if endpoint is not None and not (base_parts and fail_parts):
        endpoint = None
        base_parts, fail_parts = (_parts(step, seg.profile, None) for step in (base_step, fail))
    if set(base_parts) != set(PART_NAMES) or set(fail_parts) != set(PART_NAMES):
        return None
    own = max(("network", "device"), key=lambda k: base_parts[k])
    share = (base_parts["network"] + base_parts["device"]) / threshold
    part = PART_NAMES[own] if share >= OWN_SHARE_BREAKS else PART_NAMES["server"]
    return Why(
        part, base_parts, fail_parts, base_step.multiplier, fail.multiplier, threshold, endpoint
    )


def _parts(step: StepResult, profile: str, endpoint: str | None) -> dict[str, float]:
    """Mean network, server and device time per request of a segment (or of one endpoint)."""
    seg = step.segments.get(profile)
    if seg is None:
        return {}
    if endpoint is None:
        return dict(seg.parts_ms)
    stats = seg.endpoints.get(endpoint)
    return dict(stats.parts_ms) if stats is not None else {}


@dataclass(frozen=True)
class Beside:
    """The other segments at the level where the first one first failed: measured side by side
    in the same steps, whatever the intervals say."""

    multiplier: float
    next_held: bool | None  # None: the next segment has no verdict at that level
    next_pressure: float | None  # its worst objective's value / threshold there
    others_held: int  # of the segments besides the first and the next with a verdict there
    others: int
    next_criterion: str | None = None  # what failed the next there: latency, errors, saturation

    @property
    def text(self) -> str:
        head = f"at {self.multiplier:.3g}X, where it first failed, the next "
        if self.next_held is None:
            head += "had no verdict"
        else:
            head += "held" if self.next_held else "failed too"
            notes = []
            # A failure on errors or saturation is named: its p95 may be inside the objective.
            if not self.next_held and self.next_criterion not in (None, "latency"):
                notes.append(f"on {self.next_criterion}")
            if self.next_pressure is not None:
                p95 = "p95 " if notes else ""
                notes.append(f"{p95}at {self.next_pressure:.0%} of its objective")
            head += f" ({'; '.join(notes)})" if notes else ""
        if self.others:
            head += f", and {self.others_held} of the {self.others} others held"
        return head


@dataclass(frozen=True)
class Lead:
    """The first segment to break against the next one, and against all the others."""

    first: str
    next: str
    first_multiplier: float
    next_multiplier: float
    apart: bool  # the first's interval ends at or below where the next one's begins
    beside: Beside | None = None
    # The other segments whose interval begins above the first's ends (held ones included:
    # their interval begins at the highest level they held), in break order.
    clearly_before: tuple[str, ...] = ()
    others: int = 0  # segments besides the first
    # When the first is not clearly ahead of the next: the smallest group of first segments
    # whose intervals all end below every other segment's begins (empty: there is none).
    group: tuple[str, ...] = ()
    # Where the first's interval ends when the next one's begins there too (apart, meeting),
    # and whether that level was measured with the first failing and the next holding.
    meet_at: float | None = None
    meet_measured: bool = False

    @property
    def clearly_first(self) -> bool:
        """Its interval ends at or below where every other segment's begins: the order is a
        finding."""
        return self.others > 0 and len(self.clearly_before) == self.others

    @property
    def earlier(self) -> float:
        """How much lower the first break is, as a fraction of the next one."""
        return 1.0 - self.first_multiplier / self.next_multiplier

    @property
    def text(self) -> str:
        text = (
            f"{self.earlier:.0%} earlier than the next, {self.next} ({self.next_multiplier:.3g}X); "
        )
        apart = "their 95% intervals are apart"
        if self.meet_at is not None:
            where = ", where it failed and the next held" if self.meet_measured else ""
            apart = f"their 95% intervals do not overlap (they meet at {self.meet_at:.3g}X{where})"
        if self.clearly_first:
            text += (
                f"{apart}; clearly first: its interval ends where or below every other "
                "segment's begins"
            )
        elif self.apart:
            text += (
                f"{apart}, and it breaks clearly before "
                f"{len(self.clearly_before)} of the {self.others} others"
            )
        else:
            text += "their 95% intervals overlap: which of the two breaks first is not certain"
            if len(self.group) > 1:
                rest = self.others + 1 - len(self.group)
                text += (
                    f"; together, {' and '.join(self.group)} break clearly before "
                    f"{'the other one' if rest == 1 else f'the {rest} others'} (95% intervals "
                    "apart)"
                )
            elif self.clearly_before:
                text += (
                    f"; it breaks clearly before {len(self.clearly_before)} of the "
                    f"{self.others} others, {', '.join(self.clearly_before)} (95% intervals "
                    "apart)"
                )
        return text if self.beside is None else f"{text}; {self.beside.text}"


def lead(analysis: Analysis) -> Lead | None:
    """None when fewer than two segments broke."""
    broke = sorted(
        (s for s in analysis.segments.values() if _broke(s)),
        key=lambda s: s.breaking.multiplier or 0.0,
    )
    if len(broke) < 2:
        return None
    a, b = broke[0].breaking, broke[1].breaking
    assert a.multiplier is not None and b.multiplier is not None
    apart = _ends_below(a.high, [broke[1]])
    beside = _beside(analysis, broke[0], broke[1])
    # Held segments come after every broken one: their break lies above what they held.
    held = [s for s in analysis.segments.values() if s.breaking.label == "not_reached"]
    order = [*broke, *held]
    others = [s for s in analysis.segments.values() if s.profile != broke[0].profile]
    clearly = tuple(s.profile for s in order[1:] if _ends_below(a.high, [s]))
    group: tuple[str, ...] = ()
    for size in range(2, len(order)):
        ahead = order[:size]
        highs = [h for s in ahead if (h := s.breaking.high) is not None]
        rest = [s for s in analysis.segments.values() if s not in ahead]
        if len(highs) == size and _ends_below(max(highs), rest):
            group = tuple(s.profile for s in ahead)
            break
    meet = a.high if apart and a.high is not None and a.high == b.low else None
    measured = meet is not None and _failed_and_held(broke[0], broke[1], meet)
    return Lead(
        broke[0].profile,
        broke[1].profile,
        a.multiplier,
        b.multiplier,
        apart,
        beside,
        clearly,
        len(others),
        () if apart else group,
        meet,
        measured,
    )


def _failed_and_held(first: SegmentAnalysis, after: SegmentAnalysis, at: float) -> bool:
    """Was `at` measured with `first` failing there and `after` holding?"""
    failed = any(same_level(x.multiplier, at) and not x.passed for x in first.levels)
    return failed and any(same_level(x.multiplier, at) and x.passed for x in after.levels)


def _ends_below(high: float | None, rest: Sequence[SegmentAnalysis]) -> bool:
    """`high` lies at or below where every one of `rest`'s intervals begins (a segment without
    a verdict has none, so nothing is apart from it).

    Meeting at one end still orders them at 95%: the first's break lies above that point with
    at most 2.5%, the other's below it with at most 2.5%. They meet where each interval stops
    at the neighbouring measured level, a level where the first failed and the other held
    (docs/design.md#why-first)."""
    return high is not None and all(
        s.breaking.low is not None and high <= s.breaking.low for s in rest
    )


def _beside(analysis: Analysis, first: SegmentAnalysis, after: SegmentAnalysis) -> Beside | None:
    """The others' verdicts at the first segment's first failing level (None: it has none)."""
    if first.first_fail is None:
        return None
    at = first.first_fail

    def level_of(seg: SegmentAnalysis) -> Level | None:
        return next((lv for lv in seg.levels if same_level(lv.multiplier, at)), None)

    there = level_of(after)
    pressure = None
    if there is not None and there.p95_median_ms is not None and after.slo.p95_ms > 0:
        pressure = there.p95_median_ms / after.slo.p95_ms
    others = [
        lv
        for seg in analysis.segments.values()
        if seg.profile not in (first.profile, after.profile) and (lv := level_of(seg))
    ]
    return Beside(
        at,
        None if there is None else there.passed,
        pressure,
        sum(lv.passed for lv in others),
        len(others),
        None if there is None or there.passed else there.criterion,
    )


def _broke(s: SegmentAnalysis) -> bool:
    return s.breaking.label in ("bracketed", "extrapolated") and s.breaking.multiplier is not None


def explain_all(steps: Sequence[StepResult], analysis: Analysis) -> dict[str, Why]:
    return {name: why for name, seg in analysis.segments.items() if (why := explain(steps, seg))}


def why_fields(
    steps: Sequence[StepResult], analysis: Analysis
) -> tuple[dict[str, object] | None, dict[str, dict[str, object]]]:
    """summary.json's `first_lead` and each segment's `why`."""
    first = lead(analysis)
    lead_doc = (
        None
        if first is None
        else {
            "next": first.next,
            "earlier": first.earlier,
            "apart": first.apart,
            "clearly_first": first.clearly_first,
            "clearly_before": list(first.clearly_before),
            "group": list(first.group),
            "text": first.text,
            # Side by side where the first one first failed (None: it never failed).
            "beside": None
            if first.beside is None
            else {
                "multiplier": first.beside.multiplier,
                "next_held": first.beside.next_held,
                "next_pressure": first.beside.next_pressure,
                "others_held": first.beside.others_held,
                "others": first.beside.others,
                "next_criterion": first.beside.next_criterion,
            },
        }
    )
    return lead_doc, {name: why.as_dict() for name, why in explain_all(steps, analysis).items()}
