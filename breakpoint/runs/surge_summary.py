"""The summary.json of a surge rehearsal (`kind: "surge"`): per segment, how it fared during the
surge and how long it took to recover (docs/design.md#surge-rehearsal, #summary-contract).

Built from the run's step records (one per phase) and its per-second series (series.json).
Light to import: no numpy, no locust.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from breakpoint.analysis.surge import (
    CONFIRM_S,
    MAX_BLOCK_S,
    MIN_REQUESTS_PER_S,
    Phases,
    Recovery,
    SecondBin,
    in_flight,
    objective_ms,
    recovery,
)
from breakpoint.plan.profiles import Profile
from breakpoint.results import SegmentStep, StepResult
from breakpoint.runs.summary import SUMMARY_SCHEMA
from breakpoint.runs.summary_sections import run_warnings, step_entry

RULE = (
    "recovery_s: seconds from the drop back to 1X to the start of the first run of {n} "
    "consecutive whole seconds in which (a) the backlog (iterations offered and not finished "
    "at the end of the second) is at most what the baseline itself carried, and (b) every "
    "second with at least {m} requests had 95% of its requests (by the second their iteration "
    "was due) succeed within the segment's p95 objective; at least half of the {n} seconds "
    "must have {m} requests. A segment with fewer than {m} requests a second at 1X is judged on "
    "blocks of seconds that held {m} at 1X (up to {b} s; enough blocks to span {n} seconds, at "
    "least 2), and its resolution is the block. Interval: the same rule with a window half as "
    "long and twice as long (window sensitivity, not a confidence interval)."
)


@dataclass(frozen=True)
class SurgeView:
    """What the report and the summary need of a stored surge."""

    phases: Phases | None
    bins: Mapping[str, list[SecondBin]]
    recoveries: Mapping[str, Recovery]
    confirm_s: int


def bins_from_dict(data: dict[str, Any]) -> dict[str, list[SecondBin]]:
    """The per-segment bins of a stored series.json (as `Timeline.to_dict` wrote them)."""
    out: dict[str, list[SecondBin]] = {}
    for name, cols in (data.get("segments") or {}).items():
        n = len(cols.get("offered", ()))
        out[str(name)] = [
            SecondBin(
                offered=int(cols["offered"][i]),
                finished=int(cols["finished"][i]),
                requests=int(cols["requests"][i]),
                failed=int(cols["failed"][i]),
                p95_all_ms=cols["p95_all_ms"][i],
                p95_ms=cols["p95_ms"][i],
                slow=None if (cols.get("slow") or [None] * n)[i] is None else int(cols["slow"][i]),
            )
            for i in range(n)
        ]
    return out


def phases_of(steps: Sequence[StepResult], origin: float | None) -> Phases | None:
    """The phases' positions on the timeline, from the steps' records; None until the drop."""
    by_phase = {s.phase: s for s in steps}
    if origin is None or not {"baseline", "surge", "recovery"} <= by_phase.keys():
        return None
    base, rec = by_phase["baseline"], by_phase["recovery"]
    return Phases(
        baseline_from_s=base.started_at + base.warmup_s - origin,
        surge_from_s=by_phase["surge"].started_at - origin,
        drop_s=rec.started_at - origin,
        end_s=rec.started_at + rec.measured_s - origin,
    )


def surge_view(
    steps: Sequence[StepResult],
    profiles: Sequence[Profile],
    bins: Mapping[str, list[SecondBin]],
    origin: float | None,
    confirm_s: int = CONFIRM_S,
) -> SurgeView:
    phases = phases_of(steps, origin)
    recoveries: dict[str, Recovery] = {}
    if phases is not None:
        for p in profiles:
            recoveries[p.name] = recovery(
                bins.get(p.name, []), phases, objective_ms(p.slo), window=confirm_s
            )
    return SurgeView(phases, bins, recoveries, confirm_s)


def _phase(seg: SegmentStep | None) -> dict[str, Any] | None:
    if seg is None:
        return None
    timeouts = int(seg.errors.get("timeout", 0))
    return {
        "p50_ms": seg.p50_ms,
        "p95_ms": seg.p95_ms,
        "p99_ms": seg.p99_ms,
        "error_rate": seg.error_rate,
        "requests": seg.requests,
        "failed": seg.error_count + seg.unfinished,
        "abandoned": timeouts + seg.unfinished,  # at the client timeout, or never finished
        "errors": dict(seg.errors),
        "unfinished": seg.unfinished,
        "offered_rps": seg.offered_rps,
        "completed_rps": seg.completed_rps,
    }


def build_surge_summary(
    info: Mapping[str, Any],
    steps: Sequence[StepResult],
    profiles: Sequence[Profile],
    view: SurgeView,
    *,
    store_warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """The summary.json document of a surge run (field order is part of the file)."""
    by_phase = {s.phase: s for s in steps}
    warnings: list[dict[str, Any]] = [
        {"kind": "store", "message": m, "segment": None, "step": None} for m in store_warnings
    ]
    warnings += run_warnings(info)
    for s in steps:
        if s.generator.bound:
            warnings.append(
                {
                    "kind": "generator_bound",
                    "segment": None,
                    "step": s.index,
                    "message": f"the {s.phase} phase was generator-bound "
                    f"({'; '.join(s.generator.reasons)}): what it measured is not the target's",
                }
            )
    if view.phases is None:
        warnings.append(
            {
                "kind": "no_recovery",
                "segment": None,
                "step": None,
                "message": "the run stopped before the drop back to 1X: no recovery measured",
            }
        )
    segments = []
    for p in profiles:
        rec = view.recoveries.get(p.name)
        phase_stats = {
            ph: _phase(by_phase[ph].segments.get(p.name) if ph in by_phase else None)
            for ph in ("baseline", "surge", "recovery")
        }
        failed = sum(v["failed"] for k, v in phase_stats.items() if v and k != "baseline")
        abandoned = sum(v["abandoned"] for k, v in phase_stats.items() if v and k != "baseline")
        flying = in_flight(view.bins.get(p.name, []))
        segments.append(
            {
                "profile": p.name,
                "recovery_s": rec.recovery_s if rec else None,
                "label": rec.label if rec else "no_verdict",
                "interval": {
                    "low_s": rec.low_s if rec else None,
                    "high_s": rec.high_s if rec else None,
                    "method": "window_sensitivity",
                },
                "recovery": rec.to_dict() if rec else None,
                "objective_ms": objective_ms(p.slo),
                "surge_p95_ms": (phase_stats["surge"] or {}).get("p95_ms"),
                "surge_error_rate": (phase_stats["surge"] or {}).get("error_rate"),
                "failed": failed,
                "abandoned": abandoned,
                "peak_backlog": max(flying) if flying else None,
                "phases": phase_stats,
            }
        )
    surge = dict(info.get("surge") or {})
    ph = view.phases
    return {
        "schema": SUMMARY_SCHEMA,
        "kind": "surge",
        "run_id": info.get("run_id"),
        "label": info.get("label"),
        "model": "open",
        "created_at": info.get("created_at"),
        "status": info.get("status"),
        "stop_reason": info.get("stop_reason"),
        "git_rev": info.get("git_rev"),
        "host": info.get("host"),
        "baseline": {"value": surge.get("baseline_rps"), "unit": "req/s"},
        "surge": surge,
        "phases": None
        if ph is None
        else {
            "baseline_from_s": round(ph.baseline_from_s, 3),
            "surge_from_s": round(ph.surge_from_s, 3),
            "drop_s": round(ph.drop_s, 3),
            "end_s": round(ph.end_s, 3),
        },
        "rule": RULE.format(n=view.confirm_s, m=MIN_REQUESTS_PER_S, b=MAX_BLOCK_S),
        "segments": segments,
        "steps": [step_entry(s) for s in steps],
        "warnings": warnings,
        "versions": info.get("versions", {}),
    }
