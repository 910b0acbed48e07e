"""`summary.json`, a run's machine-readable result, and its one owner: the file name, the
schema, the writer, a typed reader, and the rule for which runs may be compared.

It is the interface scripts and CI rely on (docs/design.md#summary-contract); readers in this
package use the typed `RunSummary`, never raw dicts. Light to import: no numpy, no locust.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from breakpoint.analysis.findings import summary_segments
from breakpoint.analysis.why import why_fields
from breakpoint.errors import IncompatibleRunsError, StoreError
from breakpoint.runs.summary_sections import run_warnings, step_entry

if TYPE_CHECKING:
    from breakpoint.analysis.findings import Analysis
    from breakpoint.plan.profiles import Profile
    from breakpoint.plan.steps import Plan
    from breakpoint.results import StepResult

SUMMARY_FILE = "summary.json"
# Schema history (bumped when a field changes meaning; fields are only ever added):
# 1: first version (the contract fields of docs/design.md#summary-contract, plus fingerprint,
#    warnings, steps' phase/partial/generator fields and per-segment details).
SUMMARY_SCHEMA = 1
READABLE_SCHEMAS = (1,)  # the versions RunSummary can read


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class BreakPoint:
    """A segment's breaking point as stated in `segments[].break`."""

    multiplier: float | None
    low: float | None
    high: float | None
    label: str | None  # bracketed, extrapolated, not_reached, no_verdict
    criterion: str | None  # latency, errors, saturation
    objective: str | None = None  # the objective crossed, e.g. "page view p(95)<6000 ms"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> BreakPoint:
        return cls(
            multiplier=_number(raw.get("multiplier")),
            low=_number(raw.get("low")),
            high=_number(raw.get("high")),
            label=_text(raw.get("label")),
            criterion=_text(raw.get("criterion")),
            objective=_text(raw.get("objective")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SegmentSummary:
    """One entry of `segments`: a profile and its break (None: missing or not an object)."""

    profile: str
    breaking: BreakPoint | None
    held_to_multiplier: float | None = None  # highest level with a trusted verdict
    why: str | None = None  # why it broke (analysis/why.py)


@dataclass(frozen=True)
class StepSummary:
    """One entry of `steps`, the parts readers use."""

    multiplier: float | None
    generator_bound: bool = False


@dataclass(frozen=True)
class Fingerprint:
    """What must match for two runs to be comparable (None: the field is missing)."""

    scenario: str | None = None
    profiles: str | None = None
    plan: str | None = None
    target: str | None = None
    model: str | None = None
    emulation: bool | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Fingerprint:
        emulation = raw.get("emulation")
        return cls(
            scenario=_text(raw.get("scenario")),
            profiles=_text(raw.get("profiles")),
            plan=_text(raw.get("plan")),
            target=_text(raw.get("target")),
            model=_text(raw.get("model")),
            emulation=None if emulation is None else bool(emulation),
        )

    def to_dict(self) -> dict[str, Any]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


@dataclass(frozen=True)
class RunSummary:
    """The parts of one run's summary.json that readers use, typed."""

    run_id: str | None
    label: str | None
    model: str | None
    created_at: float | None
    status: str | None
    stop_reason: str | None = None
    git_rev: str | None = None
    max_multiplier: float | None = None
    first_to_break: str | None = None
    first_lead: str | None = None  # how far ahead of the next segment, intervals apart or not
    fingerprint: Fingerprint | None = None
    segments: tuple[SegmentSummary, ...] = ()
    steps: tuple[StepSummary, ...] = ()
    baseline: tuple[float, str] | None = None  # (value, unit)
    warnings: tuple[str, ...] = ()
    breakpoint_version: str | None = None
    host: str | None = None  # the target's URL as given to `run`

    @property
    def name(self) -> str:
        """How messages name the run: its id, else its label."""
        return str(self.run_id or self.label or "?")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        """Read a summary.json document; malformed parts become None or are left out."""
        segments = tuple(
            SegmentSummary(
                str(seg["profile"]),
                BreakPoint.from_dict(brk) if isinstance(brk := seg.get("break"), Mapping) else None,
                _number(seg.get("held_to_multiplier")),
                _text(_mapping(seg.get("why")).get("text")),
            )
            for seg in data.get("segments") or []
            if isinstance(seg, Mapping) and "profile" in seg
        )
        steps = tuple(
            StepSummary(_number(step.get("multiplier")), bool(step.get("generator_bound")))
            for step in data.get("steps") or []
            if isinstance(step, Mapping)
        )
        baseline = _mapping(data.get("baseline"))
        value = _number(baseline.get("value"))
        fingerprint = data.get("fingerprint")
        return cls(
            run_id=_text(data.get("run_id")),
            label=_text(data.get("label")),
            model=_text(data.get("model")),
            created_at=_number(data.get("created_at")),
            status=_text(data.get("status")),
            stop_reason=_text(data.get("stop_reason")),
            git_rev=_text(data.get("git_rev")),
            max_multiplier=_number(data.get("max_multiplier")),
            first_to_break=_text(data.get("first_to_break")),
            first_lead=_text(_mapping(data.get("first_lead")).get("text")),
            fingerprint=Fingerprint.from_dict(fingerprint)
            if isinstance(fingerprint, Mapping)
            else None,
            segments=segments,
            steps=steps,
            baseline=None if value is None else (value, str(baseline.get("unit", ""))),
            warnings=tuple(
                str(w["message"])
                for w in data.get("warnings") or []
                if isinstance(w, Mapping) and "message" in w
            ),
            breakpoint_version=_text(_mapping(data.get("versions")).get("breakpoint")),
            host=_text(data.get("host")),
        )


def read_summary(run_dir: Path) -> RunSummary:
    """The run's summary.json, typed; StoreError when it is unreadable or of another schema.

    A summary without a `run_id` is named after its folder.
    """
    file = run_dir / SUMMARY_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"{file}: unreadable ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") not in READABLE_SCHEMAS:
        schema = data.get("schema") if isinstance(data, dict) else None
        expected = "/".join(map(str, READABLE_SCHEMAS))
        raise StoreError(
            f"{file}: schema {schema!r} is not supported by this version "
            f"(expects {expected}); re-run `breakpoint report {run_dir}`"
        )
    data.setdefault("run_id", run_dir.name)
    return RunSummary.from_dict(data)


# -- comparability -----------------------------------------------------------------------------

# What must agree for runs to be compared, with the words a refusal uses. What was measured, not
# where: the target (host URL) is not here, because a base and a candidate deployment almost
# always differ in URL; `hosts_shown` names it instead (docs/design.md#comparison).
_MUST_AGREE: tuple[tuple[str, Callable[[RunSummary], Any]], ...] = (
    ("load model", lambda run: run.model),
    *(
        (words, lambda run, key=key: getattr(run.fingerprint or Fingerprint(), key))
        for key, words in (
            ("scenario", "scenario"),
            ("profiles", "profiles"),
            ("plan", "plan"),
            ("model", "load-model settings"),
            ("emulation", "emulation"),
        )
    ),
)


def _distinct(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _shown(value: Any) -> str:
    if value is None:
        return "missing"
    text = str(value)
    # Fingerprints are long hex digests; 12 characters identify them in a one-line message.
    return text[:12] if len(text) > 12 and text.isalnum() else text


def differences(base: Sequence[RunSummary], new: Sequence[RunSummary]) -> list[str]:
    """Why the base runs and the new runs may not be compared; empty when they may.

    The one comparability rule (docs/design.md#comparison): same load model, scenario,
    profiles, plan, load-model settings and emulation, on every run of both sides. The target
    may differ (see `hosts_shown`).
    """
    reasons = []
    unchecked = [run.name for run in (*base, *new) if run.fingerprint is None]
    if unchecked:
        reasons.append(
            f"no fingerprint in run {', '.join(unchecked)}: cannot check that the runs used "
            "the same scenario, profiles and plan"
        )
    for words, value in _MUST_AGREE:
        sides = [_distinct(value(run) for run in runs) for runs in (base, new)]
        if len(_distinct([*sides[0], *sides[1]])) > 1:
            shown = ["/".join(_shown(v) for v in values) for values in sides]
            reasons.append(f"different {words}: base {shown[0]} vs new {shown[1]}")
    return reasons


def hosts_shown(base: Sequence[RunSummary], new: Sequence[RunSummary]) -> str:
    """The target of each side in one line (recorded and shown, never a reason to refuse)."""

    def side(runs: Sequence[RunSummary]) -> str:
        found = _distinct(
            run.host or (run.fingerprint.target if run.fingerprint else None) for run in runs
        )
        return " / ".join(str(t) for t in found if t) or "not recorded"

    shown = [side(base), side(new)]
    same = "" if shown[0] != shown[1] else " (the same target)"
    return f"target: base {shown[0]}, new {shown[1]}{same}"


def check_comparable(
    base: Sequence[RunSummary], new: Sequence[RunSummary], *, force: bool = False
) -> list[str]:
    """The differences between the sides; IncompatibleRunsError with them unless force.

    An empty side is refused even with force: there is nothing to compare.
    """
    sides = (("base", base), ("new", new))
    empty = [f"no {side} runs to compare" for side, runs in sides if not runs]
    if empty:
        raise IncompatibleRunsError("; ".join(empty))
    reasons = differences(base, new)
    if reasons and not force:
        raise IncompatibleRunsError(
            "runs are not comparable: " + "; ".join(reasons) + " (--force compares anyway)"
        )
    return reasons


# -- writing -----------------------------------------------------------------------------------


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(info: Mapping[str, Any], plan: Plan, profiles: Sequence[Profile]) -> dict[str, Any]:
    """The `fingerprint` of a run: what `differences` checks.

    The plan's seed and refinement settings do not change what is measured, so they are left
    out. `target` is recorded (the embedded demo target by its capacity settings, any other by
    its URL) but not compared: releases are measured on different deployments.
    """
    target = info.get("target") or {}
    if target.get("kind") == "embedded":
        target_key = f"embedded workers={target.get('workers')}"
    else:
        target_key = str(info.get("host", ""))
    return {
        "scenario": str((info.get("scenario") or {}).get("fingerprint", "")),
        "profiles": _digest(
            sorted(
                # A requirement (min_break) is not what was measured: it may change freely.
                (
                    {k: v for k, v in p.as_dict().items() if k not in ("description", "min_break")}
                    for p in profiles
                ),
                key=lambda d: d["name"],
            )
        ),
        "plan": _digest(
            {
                k: plan.to_dict()[k]
                for k in ("model", "baseline", "max_multiplier", "warmup_s", "hold_s")
            }
        ),
        "target": target_key,
        "model": plan.model,
        "emulation": bool(info.get("emulation", True)),
    }


def build_summary(
    info: Mapping[str, Any],
    steps: Sequence[StepResult],
    analysis: Analysis,
    plan: Plan,
    profiles: Sequence[Profile],
    *,
    store_warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """The summary.json document of an analysed run (field order is part of the file)."""
    warnings = [
        {"kind": w.kind, "message": w.message, "segment": w.segment, "step": w.step}
        for w in analysis.warnings
    ] + [{"kind": "store", "message": m, "segment": None, "step": None} for m in store_warnings]
    warnings += run_warnings(info)
    measurement = info.get("measurement") or {}
    lead_doc, whys = why_fields(steps, analysis)
    return {
        "schema": SUMMARY_SCHEMA,
        "run_id": info.get("run_id"),
        "label": info.get("label"),
        "model": plan.model,
        "created_at": info.get("created_at"),
        "status": info.get("status"),
        "stop_reason": info.get("stop_reason"),
        "git_rev": info.get("git_rev"),
        "host": info.get("host"),
        "baseline": {"value": plan.baseline, "unit": plan.unit},
        "max_multiplier": plan.max_multiplier,
        "first_to_break": analysis.first_to_break,
        # How far ahead the first break is, and why each segment broke (analysis/why.py).
        "first_lead": lead_doc,
        "fingerprint": fingerprint(info, plan, profiles),
        "segments": [
            seg | ({"why": whys[seg["profile"]]} if seg["profile"] in whys else {})
            for seg in summary_segments(analysis)
        ],
        "measurement": {
            "dropped_outside": int(measurement.get("dropped_outside", 0) or 0),
            "warmup_requests": int(measurement.get("warmup_requests", 0) or 0),
            "drain_s": measurement.get("drain_s"),
            "latency": "successful requests, from the iteration's intended start to the last "
            "byte and device time; errors are judged by their own rate",
        },
        "steps": [step_entry(s) for s in steps],
        "warnings": warnings,
        "versions": info.get("versions", {}),
    }
