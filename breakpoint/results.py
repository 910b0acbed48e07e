"""Measured results as plain data: one record per step per segment, and a whole run.

These objects flow from the recorder to the store and from the store to the analysis, the
report and the comparison; `merge_steps` makes one step of what several generator processes
measured. Pure: no locust, no file I/O. Latency histograms travel encoded (histograms.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from breakpoint.histograms import encode_histogram, merge_encoded, percentiles_ms

# Stored-format version of a step record and of run.json; bump with a note when fields change.
# 1: first version.
RECORD_SCHEMA = 1

ERROR_KINDS = ("timeout", "connection", "http_4xx", "http_5xx", "blocked", "other")
# Requests that failed inside the load generator (out of file descriptors or local ports) are
# counted apart, as `generator_errors`: they are not the target's errors.


@dataclass(frozen=True)
class EndpointStats:
    """One endpoint of one segment in one step."""

    requests: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    histogram: str = ""
    parts_ms: Mapping[str, float] = field(default_factory=dict)  # mean per successful request

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "histogram": self.histogram,
            "parts_ms": dict(self.parts_ms),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EndpointStats:
        return cls(
            requests=int(d["requests"]),
            errors=int(d["errors"]),
            p50_ms=d.get("p50_ms"),
            p95_ms=d.get("p95_ms"),
            p99_ms=d.get("p99_ms"),
            histogram=d.get("histogram", ""),
            parts_ms=dict(d.get("parts_ms") or {}),
        )


@dataclass(frozen=True)
class Series:
    """Per-second series over the measured window of a step (index 0 = first measured second)."""

    completed: tuple[int, ...] = ()
    errors: tuple[int, ...] = ()
    mean_ms: tuple[float | None, ...] = ()
    slow: tuple[int, ...] = ()  # requests slower than the abort limit (guardrail)

    def to_dict(self) -> dict[str, Any]:
        return {
            "completed": list(self.completed),
            "errors": list(self.errors),
            "mean_ms": list(self.mean_ms),
            "slow": list(self.slow),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Series:
        return cls(
            tuple(d.get("completed", ())),
            tuple(d.get("errors", ())),
            tuple(d.get("mean_ms", ())),
            tuple(d.get("slow", ())),
        )


@dataclass(frozen=True)
class SegmentStep:
    """What one segment experienced during the measured part of one step."""

    segment: str
    requests: int  # completed requests (errors included) of the window's iterations
    errors: Mapping[str, int]  # error kind -> count (kinds in ERROR_KINDS)
    offered_rps: float  # arrivals scheduled (open) or requests attempted (closed)
    completed_rps: float
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    histogram: str = ""  # experienced latency of successful requests, microseconds, encoded
    parts_ms: Mapping[str, float] = field(default_factory=dict)  # mean network/server/device
    endpoints: Mapping[str, EndpointStats] = field(default_factory=dict)
    series: Series = field(default_factory=Series)
    unfinished: int = 0  # iterations still running at the drain deadline (count as timeouts)
    generator_errors: int = 0  # requests the generator could not make (not the target's)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float:
        total = self.requests + self.unfinished
        return (self.error_count + self.unfinished) / total if total else 0.0

    @property
    def completion_ratio(self) -> float | None:
        """completed / offered; None when nothing was offered."""
        return self.completed_rps / self.offered_rps if self.offered_rps > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "requests": self.requests,
            "errors": dict(self.errors),
            "offered_rps": self.offered_rps,
            "completed_rps": self.completed_rps,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "mean_ms": self.mean_ms,
            "error_rate": self.error_rate,
            "unfinished": self.unfinished,
            "generator_errors": self.generator_errors,
            "histogram": self.histogram,
            "parts_ms": dict(self.parts_ms),
            "endpoints": {k: v.to_dict() for k, v in self.endpoints.items()},
            "series": self.series.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SegmentStep:
        return cls(
            segment=d["segment"],
            requests=int(d["requests"]),
            errors={str(k): int(v) for k, v in d.get("errors", {}).items()},
            offered_rps=float(d["offered_rps"]),
            completed_rps=float(d["completed_rps"]),
            p50_ms=d.get("p50_ms"),
            p90_ms=d.get("p90_ms"),
            p95_ms=d.get("p95_ms"),
            p99_ms=d.get("p99_ms"),
            max_ms=d.get("max_ms"),
            mean_ms=d.get("mean_ms"),
            histogram=d.get("histogram", ""),
            parts_ms={str(k): float(v) for k, v in d.get("parts_ms", {}).items()},
            endpoints={k: EndpointStats.from_dict(v) for k, v in d.get("endpoints", {}).items()},
            series=Series.from_dict(d.get("series", {})),
            unfinished=int(d.get("unfinished", 0)),
            generator_errors=int(d.get("generator_errors", 0)),
        )


@dataclass(frozen=True)
class GeneratorHealth:
    """How the load generator itself fared during a step."""

    cpu_pct_max: float = 0.0  # highest per-second CPU of any generator process
    cpu_pct_mean: float = 0.0
    loop_lag_p99_ms: float = 0.0  # event-loop (gevent hub) wake-up lateness
    schedule_lag_p99_ms: float = 0.0  # how late arrivals were picked up (open model)
    bound: bool = False  # the generator, not the target, was the bottleneck
    reasons: tuple[str, ...] = ()
    workers: int = 1
    workers_lost: int = 0
    user_wait_p99_ms: float = 0.0  # how long arrivals waited for a free virtual user
    waited_arrivals: int = 0  # arrivals that waited materially (load/health.py: USER_WAIT_LATE_S)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_pct_max": self.cpu_pct_max,
            "cpu_pct_mean": self.cpu_pct_mean,
            "loop_lag_p99_ms": self.loop_lag_p99_ms,
            "schedule_lag_p99_ms": self.schedule_lag_p99_ms,
            "bound": self.bound,
            "reasons": list(self.reasons),
            "workers": self.workers,
            "workers_lost": self.workers_lost,
            "user_wait_p99_ms": self.user_wait_p99_ms,
            "waited_arrivals": self.waited_arrivals,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GeneratorHealth:
        return cls(
            cpu_pct_max=float(d.get("cpu_pct_max", 0)),
            cpu_pct_mean=float(d.get("cpu_pct_mean", 0)),
            loop_lag_p99_ms=float(d.get("loop_lag_p99_ms", 0)),
            schedule_lag_p99_ms=float(d.get("schedule_lag_p99_ms", 0)),
            bound=bool(d.get("bound", False)),
            reasons=tuple(d.get("reasons", ())),
            workers=int(d.get("workers", 1)),
            workers_lost=int(d.get("workers_lost", 0)),
            user_wait_p99_ms=float(d.get("user_wait_p99_ms", 0)),
            waited_arrivals=int(d.get("waited_arrivals", 0)),
        )


@dataclass(frozen=True)
class StepResult:
    """One load level held steady: its settings and what every segment experienced."""

    index: int  # 0-based order in which steps ran
    multiplier: float
    load: float  # offered arrival rate (open, req/s) or users (closed)
    phase: str  # "ramp", "beyond", "refine", "repeat" or "separate"
    started_at: float  # epoch seconds of the step's start
    warmup_s: float
    measured_s: float  # length of the measured window actually held
    segments: Mapping[str, SegmentStep]
    generator: GeneratorHealth = field(default_factory=GeneratorHealth)
    partial: bool = False  # the run stopped during this step

    def records(self) -> list[dict[str, Any]]:
        """One stored record per segment (the step's own fields repeated in each)."""
        head = {
            "schema": RECORD_SCHEMA,
            "kind": "segment_step",
            "step": self.index,
            "multiplier": self.multiplier,
            "load": self.load,
            "phase": self.phase,
            "started_at": self.started_at,
            "warmup_s": self.warmup_s,
            "measured_s": self.measured_s,
            "partial": self.partial,
            "generator": self.generator.to_dict(),
        }
        return [{**head, **seg.to_dict()} for seg in self.segments.values()]

    @classmethod
    def from_records(cls, records: list[Mapping[str, Any]]) -> StepResult:
        first = records[0]
        return cls(
            index=int(first["step"]),
            multiplier=float(first["multiplier"]),
            load=float(first["load"]),
            phase=str(first.get("phase", "ramp")),
            started_at=float(first["started_at"]),
            warmup_s=float(first["warmup_s"]),
            measured_s=float(first["measured_s"]),
            segments={r["segment"]: SegmentStep.from_dict(r) for r in records},
            generator=GeneratorHealth.from_dict(first.get("generator", {})),
            partial=bool(first.get("partial", False)),
        )


def group_records(records: Iterable[Mapping[str, Any]]) -> list[StepResult]:
    """Rebuild steps from stored records (in step order), ignoring records of other kinds."""
    by_step: dict[int, list[Mapping[str, Any]]] = {}
    for rec in records:
        if rec.get("kind") == "segment_step":
            by_step.setdefault(int(rec["step"]), []).append(rec)
    return [StepResult.from_records(by_step[i]) for i in sorted(by_step)]


def _sum_dicts(dicts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            total[k] = total.get(k, 0) + v
    return total


def _pad(values: Sequence[Any], n: int, fill: Any) -> list[Any]:
    return list(values) + [fill] * (n - len(values))


def _mean_parts(weighted: Sequence[tuple[Mapping[str, float], int]]) -> dict[str, float]:
    """Mean latency parts of several measurements, each weighted by its successful requests."""
    total = sum(n for _, n in weighted)
    names = {k for parts, _ in weighted for k in parts}
    return {k: sum(p.get(k, 0.0) * n for p, n in weighted) / total for k in names} if total else {}


def merge_segment_steps(parts: Sequence[SegmentStep]) -> SegmentStep:
    """One segment's step measured by several generator processes, as if measured by one.

    Histograms are merged exactly; counts and rates add up; mean latency parts and per-second
    means are weighted by request counts.
    """
    if len(parts) == 1:
        return parts[0]
    hist = merge_encoded(p.histogram for p in parts)
    pct = percentiles_ms(hist)
    requests = sum(p.requests for p in parts)
    # Latency parts and means are over successful requests (the histograms hold only those).
    parts_ms = _mean_parts([(p.parts_ms, p.requests - p.error_count) for p in parts])
    endpoints: dict[str, EndpointStats] = {}
    for name in sorted({e for p in parts for e in p.endpoints}):
        mine = [p.endpoints[name] for p in parts if name in p.endpoints]
        ep_hist = merge_encoded(e.histogram for e in mine)
        ep_pct = percentiles_ms(ep_hist)
        endpoints[name] = EndpointStats(
            requests=sum(e.requests for e in mine),
            errors=sum(e.errors for e in mine),
            p50_ms=ep_pct["p50_ms"],
            p95_ms=ep_pct["p95_ms"],
            p99_ms=ep_pct["p99_ms"],
            histogram=encode_histogram(ep_hist),
            parts_ms=_mean_parts([(e.parts_ms, e.requests - e.errors) for e in mine]),
        )
    seconds = max(len(p.series.completed) for p in parts)
    completed = [0] * seconds
    errors = [0] * seconds
    slow = [0] * seconds
    weighted = [0.0] * seconds
    succeeded = [0] * seconds
    for p in parts:
        for i, n in enumerate(p.series.slow):
            slow[i] += n
        counts = _pad(p.series.completed, seconds, 0)
        means = _pad(p.series.mean_ms, seconds, None)
        for i, (c, e, m) in enumerate(
            zip(counts, _pad(p.series.errors, seconds, 0), means, strict=True)
        ):
            completed[i] += c
            errors[i] += e
            succeeded[i] += c - e
            weighted[i] += (m or 0.0) * (c - e)
    mean_ms = tuple((w / c if c else None) for w, c in zip(weighted, succeeded, strict=True))
    return SegmentStep(
        segment=parts[0].segment,
        requests=requests,
        errors=_sum_dicts(p.errors for p in parts),
        offered_rps=sum(p.offered_rps for p in parts),
        completed_rps=sum(p.completed_rps for p in parts),
        p50_ms=pct["p50_ms"],
        p90_ms=pct["p90_ms"],
        p95_ms=pct["p95_ms"],
        p99_ms=pct["p99_ms"],
        max_ms=pct["max_ms"],
        mean_ms=pct["mean_ms"],
        histogram=encode_histogram(hist),
        parts_ms=parts_ms,
        endpoints=endpoints,
        series=Series(tuple(completed), tuple(errors), mean_ms, tuple(slow)),
        unfinished=sum(p.unfinished for p in parts),
        generator_errors=sum(p.generator_errors for p in parts),
    )


def merge_health(parts: Sequence[GeneratorHealth], *, workers_lost: int = 0) -> GeneratorHealth:
    """The generator as a whole: bound when any process was, or when a worker was lost."""
    reasons = tuple(dict.fromkeys(r for p in parts for r in p.reasons))
    if workers_lost:
        reasons += (f"{workers_lost} worker(s) lost during the step",)
    return GeneratorHealth(
        cpu_pct_max=max((p.cpu_pct_max for p in parts), default=0.0),
        cpu_pct_mean=sum(p.cpu_pct_mean for p in parts) / len(parts) if parts else 0.0,
        loop_lag_p99_ms=max((p.loop_lag_p99_ms for p in parts), default=0.0),
        schedule_lag_p99_ms=max((p.schedule_lag_p99_ms for p in parts), default=0.0),
        bound=any(p.bound for p in parts) or workers_lost > 0,
        reasons=reasons,
        workers=len(parts),
        workers_lost=workers_lost,
        user_wait_p99_ms=max((p.user_wait_p99_ms for p in parts), default=0.0),
        waited_arrivals=sum(p.waited_arrivals for p in parts),
    )


def merge_steps(parts: Sequence[StepResult], *, workers_lost: int = 0) -> StepResult:
    """A step measured by several worker processes (same windows), merged into one."""
    first = parts[0]
    names = list(dict.fromkeys(n for p in parts for n in p.segments))
    return StepResult(
        index=first.index,
        multiplier=first.multiplier,
        load=first.load,
        phase=first.phase,
        started_at=min(p.started_at for p in parts),
        warmup_s=first.warmup_s,
        measured_s=max(p.measured_s for p in parts),
        segments={
            n: merge_segment_steps([p.segments[n] for p in parts if n in p.segments]) for n in names
        },
        generator=merge_health([p.generator for p in parts], workers_lost=workers_lost),
        partial=any(p.partial for p in parts),
    )
