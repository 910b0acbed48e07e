"""The lists summary.json's writer (`summary.build_summary`) builds from a run's records:
one entry per measured step, and the warnings about the run as a whole.

Field order is part of the file (docs/design.md#summary-contract); never reorder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from breakpoint.plan.loopback import loopback_note
from breakpoint.plan.profiles import profile_from_dict

if TYPE_CHECKING:
    from breakpoint.results import StepResult


def _warning(kind: str, message: str) -> dict[str, Any]:
    return {"kind": kind, "segment": None, "step": None, "message": message}


def run_warnings(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Warnings about the run as a whole, from its run.json."""
    warnings = []
    blocked = info.get("blocked_hosts") or {}
    if blocked:
        listed = ", ".join(f"{host} ({n})" for host, n in sorted(blocked.items()))
        warnings.append(
            _warning(
                "blocked_hosts",
                f"the scenario called hosts other than the target; those requests were "
                f"blocked and not sent: {listed} (allow them with --allow-host)",
            )
        )
    reached = info.get("reached_hosts") or {}
    if reached:
        listed = ", ".join(f"{host} ({n})" for host, n in sorted(reached.items()))
        warnings.append(
            _warning(
                "reached_hosts",
                "the scenario's own client reported requests to hosts other than the target; "
                "they were sent (the guard cannot stop a custom client) and not measured: "
                f"{listed}",
            )
        )
    not_emulated = info.get("not_emulated") or []
    if not_emulated:
        warnings.append(
            _warning(
                "not_emulated",
                f"users of {', '.join(not_emulated)} have no HTTP client to emulate: their "
                "network was not emulated (only their device time was added); they are "
                "measured from the requests they report (events.request)",
            )
        )
    crashes = info.get("scenario_errors") or {}
    if crashes.get("total"):
        warnings.append(
            _warning(
                "scenario_errors",
                f"the scenario's own code raised {crashes['total']} exceptions "
                f"({'; '.join(crashes.get('first') or [])}); not measurements of the target",
            )
        )
    target = info.get("target") or {}
    if info.get("emulation", True) and target.get("kind") != "embedded":
        # The embedded target bounds its unsent bytes: it feels slow readers (demo/server.py).
        profiles = [profile_from_dict(p) for p in info.get("profiles") or []]
        note = loopback_note(str(info.get("host") or ""), profiles)
        if note:
            warnings.append(_warning("loopback_slow_readers", note))
    measurement = info.get("measurement") or {}
    if measurement.get("dropped_outside"):
        warnings.append(
            _warning(
                "dropped_outside",
                f"{measurement['dropped_outside']} requests ended after their step's "
                "record was final and are in no step (a window waits for its requests up to "
                f"the drain deadline, {measurement.get('drain_s', 0):g} s)",
            )
        )
    if info.get("status") not in ("complete", None):
        warnings.append(
            _warning(
                "partial_run",
                "the run did not complete "
                f"({info.get('stop_reason') or info.get('status')}): "
                "results cover the steps measured before it stopped",
            )
        )
    return warnings


def step_entry(s: StepResult) -> dict[str, Any]:
    return {
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
