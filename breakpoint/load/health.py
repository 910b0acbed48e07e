"""A step's generator health: whether the generator, not the target, was the bottleneck
(docs/design.md#generator-faults), from the samplers' CPU and lag samples, arrivals that waited
for a free virtual user, and requests the generator itself could not make.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from breakpoint.results import GeneratorHealth

# Above these the generator, not the target, is the bottleneck (docs/design.md#field-notes: above
# about 80% CPU a process's sleep-error p99 passes 50 ms).
CPU_BOUND_PCT = 90.0
LOOP_LAG_BOUND_MS = 100.0
# ... and one stall longer than this is not a pause the step can absorb: while the loop stood
# still no arrival was sent and no response read (a 28 s pause of the machine once left a 3X
# step with 1.2 req/s offered, measured as if the target had been offered 3X).
LOOP_STALL_MS = 1000.0
SCHEDULE_LAG_BOUND_MS = 100.0


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _p99(values: list[float]) -> float:
    return _quantile(values, 0.99)


# An arrival that waited longer than this for a free virtual user was sent late by the
# generator; when more than USER_WAIT_SHARE of a window's arrivals (and more than one) did, the
# pool of users (or --max-users) was too small: a generator fault, not the target's latency.
# (One late arrival is a pause, not a pool too small: a worker's window of a distributed run
# may hold only a few dozen arrivals.)
USER_WAIT_LATE_S = 0.05
USER_WAIT_SHARE = 0.01


def summarise_health(
    samples: Sequence[tuple[str, float]],
    workers: int = 1,
    workers_lost: int = 0,
    *,
    user_waits_s: Sequence[float] = (),
    arrivals: int = 0,
    generator_errors: int = 0,
    target_saturated: bool = False,
    pool_capped: bool = False,
) -> GeneratorHealth:
    """The generator's health over a window. Arrivals waiting for a free virtual user are a
    generator fault, except while the target itself could not keep up (completed clearly below
    offered, with the pool below its cap): then every user is held by the target's queue and
    the wait is the target's latency, timed from the intended start."""
    cpu = [v for k, v in samples if k == "cpu"]
    loop = [v for k, v in samples if k == "loop_lag_ms"]
    sched = [v for k, v in samples if k == "schedule_lag_ms"]
    reasons = []
    cpu_max = max(cpu) if cpu else 0.0
    cpu_mean = sum(cpu) / len(cpu) if cpu else 0.0
    busy = sorted(cpu, reverse=True)[:2]
    if len(busy) == 2 and min(busy) >= CPU_BOUND_PCT:
        reasons.append(f"generator CPU at {cpu_max:.0f}% (limit {CPU_BOUND_PCT:.0f}%)")
    loop_p99, sched_p99 = _p99(loop), _p99(sched)
    # Bound means *sustained* lateness: the p95 of the samples, so that one pause (a garbage
    # collection, a neighbour's burst) does not discard a step; one stall of seconds does.
    # Arrivals sent late are still timed from their intended start, so a short pause costs a
    # few late samples, not honesty.
    loop_p95, sched_p95 = _quantile(loop, 0.95), _quantile(sched, 0.95)
    if loop_p95 > LOOP_LAG_BOUND_MS:
        reasons.append(f"event-loop lag p95 {loop_p95:.0f} ms")
    elif loop and max(loop) > LOOP_STALL_MS:
        reasons.append(
            f"the event loop stood still for {max(loop) / 1000:.1f} s (the machine paused, "
            "swapped, or a call blocked): no load was sent meanwhile"
        )
    if sched_p95 > SCHEDULE_LAG_BOUND_MS:
        reasons.append(f"arrivals sent late: schedule lag p95 {sched_p95:.0f} ms")
    late = sum(1 for w in user_waits_s if w > USER_WAIT_LATE_S)
    if pool_capped and late:
        reasons.append(
            f"{late} of {arrivals} arrivals waited for a free virtual user with the pool at its "
            "cap (raise --max-users, or the open-files limit)"
        )
    elif arrivals and late > max(1.0, USER_WAIT_SHARE * arrivals) and not target_saturated:
        reasons.append(
            f"{late} of {arrivals} arrivals waited over {USER_WAIT_LATE_S * 1000:.0f} ms for a "
            "free virtual user (the pool of users was too small; raise --max-users)"
        )
    if generator_errors:
        reasons.append(
            f"{generator_errors} requests failed in the generator itself (out of file "
            "descriptors or local ports; raise `ulimit -n`)"
        )
    if workers_lost:
        reasons.append(f"{workers_lost} worker(s) lost")
    return GeneratorHealth(
        cpu_pct_max=cpu_max,
        cpu_pct_mean=cpu_mean,
        loop_lag_p99_ms=loop_p99,
        schedule_lag_p99_ms=sched_p99,
        bound=bool(reasons),
        reasons=tuple(reasons),
        workers=workers,
        workers_lost=workers_lost,
        user_wait_p99_ms=_p99([w * 1000.0 for w in user_waits_s]),
        waited_arrivals=late,
    )
