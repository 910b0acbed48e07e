"""The machine-readable summary of a run (summary.json) and its Markdown digest for CI logs.

`summary.json` is the interface scripts and CI rely on (DESIGN.md section 11). Its `schema` is
bumped when a field changes meaning; fields are only ever added. Pure: dicts in, dicts out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from breakpoint.analysis.findings import Analysis, summary_segments
from breakpoint.plan.profiles import Profile
from breakpoint.plan.steps import Plan
from breakpoint.results import StepResult

# 1: first version (contract fields of DESIGN.md section 11, plus fingerprint, warnings, steps'
#    phase/partial/generator fields and per-segment details).
SUMMARY_SCHEMA = 1


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(info: Mapping[str, Any], plan: Plan, profiles: Sequence[Profile]) -> dict[str, Any]:
    """What must match for two runs to be comparable.

    The plan's seed and refinement settings do not change what is measured, so they are left
    out. For the embedded demo target only its capacity settings count (its service time is
    what a "release" changes); for any other target, its URL.
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
                ({k: v for k, v in p.as_dict().items() if k != "description"} for p in profiles),
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
    warnings = [
        {"kind": w.kind, "message": w.message, "segment": w.segment, "step": w.step}
        for w in analysis.warnings
    ] + [{"kind": "store", "message": m, "segment": None, "step": None} for m in store_warnings]
    blocked = info.get("blocked_hosts") or {}
    if blocked:
        listed = ", ".join(f"{host} ({n})" for host, n in sorted(blocked.items()))
        warnings.append(
            {
                "kind": "blocked_hosts",
                "segment": None,
                "step": None,
                "message": f"the scenario called hosts other than the target; those requests were "
                f"blocked and not sent: {listed} (allow them with --allow-host)",
            }
        )
    measurement = info.get("measurement") or {}
    if measurement.get("dropped_outside"):
        warnings.append(
            {
                "kind": "dropped_outside",
                "segment": None,
                "step": None,
                "message": f"{measurement['dropped_outside']} requests ended after their step's "
                "record was final and are in no step (a window waits for its requests up to "
                f"the drain deadline, {measurement.get('drain_s', 0):g} s)",
            }
        )
    if info.get("status") not in ("complete", None):
        warnings.append(
            {
                "kind": "partial_run",
                "segment": None,
                "step": None,
                "message": "the run did not complete "
                f"({info.get('stop_reason') or info.get('status')}): "
                "results cover the steps measured before it stopped",
            }
        )
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
        "fingerprint": fingerprint(info, plan, profiles),
        "segments": summary_segments(analysis),
        "measurement": {
            "dropped_outside": int(measurement.get("dropped_outside", 0) or 0),
            "warmup_requests": int(measurement.get("warmup_requests", 0) or 0),
            "drain_s": measurement.get("drain_s"),
            "latency": "successful requests, from the iteration's intended start to the last "
            "byte and device time; errors are judged by their own rate",
        },
        "steps": [
            {
                "index": s.index,
                "multiplier": s.multiplier,
                "load": s.load,
                "phase": s.phase,
                "partial": s.partial,
                "measured_s": s.measured_s,
                "generator_bound": s.generator.bound,
                "generator_reasons": list(s.generator.reasons),
                "warmup_s": s.warmup_s,
                "segments": {
                    name: {
                        "p50_ms": seg.p50_ms,
                        "p95_ms": seg.p95_ms,
                        "p99_ms": seg.p99_ms,
                        "error_rate": seg.error_rate,
                        "offered_rps": seg.offered_rps,
                        "completed_rps": seg.completed_rps,
                        "requests": seg.requests,
                        "unfinished": seg.unfinished,
                        "errors": dict(seg.errors),
                    }
                    for name, seg in s.segments.items()
                },
            }
            for s in steps
        ],
        "warnings": warnings,
        "versions": info.get("versions", {}),
    }


def _md(text: object) -> str:
    """Text from the run, safe in Markdown that a viewer may render as HTML (and in tables)."""
    return (
        str(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
    )


def highest_trusted(summary: Mapping[str, Any]) -> float | None:
    """The highest multiplier up to which every judged segment was measured by a trusted step
    (its break's low bound when it held), or None when no segment was judged."""
    held = []
    for seg in summary.get("segments", []):
        b = seg.get("break") or {}
        if b.get("label") == "not_reached":
            top = seg.get("held_to_multiplier") or b.get("low")
            if top is not None:
                held.append(float(top))
    if held:
        return min(held)
    levels = [s["multiplier"] for s in summary.get("steps", []) if not s.get("generator_bound")]
    judged = [s for s in summary.get("segments", []) if s["break"].get("label") != "no_verdict"]
    return max(levels) if levels and judged else None


def _fmt_break(b: Mapping[str, Any]) -> str:
    m = b.get("multiplier")
    if b.get("label") == "no_verdict":
        return "no verdict"
    if b.get("label") == "not_reached":
        return "holds" + (f" (fit: ~{m:.3g}X)" if m else "")
    if m is None:
        return "unknown"
    low, high = b.get("low"), b.get("high")
    interval = f" [{low:.3g}–{high:.3g}]" if low is not None and high is not None else ""
    return f"{m:.3g}X{interval}"


def markdown(summary: Mapping[str, Any]) -> str:
    """A short digest for CI logs and pull-request comments."""
    lines = [
        f"## breakpoint: {_md(summary.get('label'))} ({summary.get('model')} model, 1X = "
        f"{summary['baseline']['value']:g} {summary['baseline']['unit']})",
        "",
    ]
    first = summary.get("first_to_break")
    judged = (
        "judged "
        if any(s["break"].get("label") == "no_verdict" for s in summary["segments"])
        else ""
    )
    if first:
        seg = next(s for s in summary["segments"] if s["profile"] == first)
        lines.append(
            f"**First to break: {_md(first)} at {_fmt_break(seg['break'])}** "
            f"({seg['break'].get('criterion')}, {seg['break'].get('label')})."
        )
    else:
        reached = highest_trusted(summary)
        cap = summary.get("max_multiplier") or 0
        if reached is None:
            lines.append(
                "No segment could be judged: no step measured enough of any segment's requests "
                "with a trusted generator (see the warnings), so nothing is known yet."
            )
        elif reached >= cap - 1e-9:
            lines.append(f"No {judged}segment broke up to {cap:g}X.")
        else:
            lines.append(
                f"No {judged}segment broke up to {reached:g}X, but the run stopped before its cap "
                f"of {cap:g}X ({summary.get('stop_reason') or 'see the warnings'}): not evidence "
                "that they hold."
            )
    unmeasured = [
        s["profile"] for s in summary["segments"] if s["break"].get("label") == "no_verdict"
    ]
    if unmeasured:
        lines.append(
            f"No verdict for {_md(', '.join(unmeasured))}: too few of their requests were "
            "measured at any level; lengthen --hold-s or raise the baseline or their share."
        )
    lines += ["", "| segment | breaks at | label | criterion |", "|---|---|---|---|"]
    for seg in summary["segments"]:
        b = seg["break"]
        lines.append(
            f"| {_md(seg['profile'])} | {_fmt_break(b)} | {b.get('label')} | "
            f"{b.get('criterion') or '–'} |"
        )
    if summary.get("warnings"):
        lines += ["", "Measurement warnings:"]
        lines += [f"- {_md(w['message'])}" for w in summary["warnings"][:10]]
        if len(summary["warnings"]) > 10:
            lines.append(f"- … and {len(summary['warnings']) - 10} more (see report.html)")
    return "\n".join(lines) + "\n"
