"""Step lengths sized to the slowest segment (pure).

A verdict needs enough of a segment's requests in a measured window, and a window must outlast
that segment's requests: a low-end 3G user's 200 KB download takes about 5 s, longer than a
short step. So every step, scouts included, gets a warm-up of at least the slowest segment's
expected request time and a hold long enough that every segment is expected to complete
EXPECTED_REQUESTS requests (twice the verdict's minimum, so that Poisson noise rarely leaves
one short) and to last HOLD_P95_MULTIPLE times its p95 (docs/design.md#step-sizing).

Expected request times and request rates come from the steps already measured (the latest
trusted step of each segment; with objectives, the rate of the rarest objective's endpoint, as
each is judged on its own requests) and, before any step, from the network model and the
traffic shares, assuming one request per iteration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from breakpoint.analysis.criteria import MIN_REQUESTS
from breakpoint.plan import netmodel
from breakpoint.plan.profiles import Profile
from breakpoint.plan.steps import Plan, PlannedStep
from breakpoint.results import StepResult

EXPECTED_REQUESTS = 2 * MIN_REQUESTS
HOLD_P95_MULTIPLE = 3.0
# Before any step: the model's time of a mid-sized response on a new connection.
TYPICAL_RESPONSE_BYTES = 30 * 1024
TYPICAL_REQUEST_BYTES = 400
# A closed-model user's iteration rate before any step: one per (request time + this think time).
ASSUMED_THINK_S = 1.0


@dataclass(frozen=True)
class Pace:
    """What sizing needs to know of one segment."""

    name: str
    share: float
    request_s: float  # expected (p95) duration of one of its requests
    requests_per_load_s: float  # its requests per second per unit of load (1 req/s or 1 user)
    timeout_s: float = math.inf
    # A learnt request time is capped here (its SLO, or the model's time if longer): once a
    # segment fails, its growing latency says nothing about how long steps must be.
    cap_s: float = math.inf
    # Its objectives' endpoints (docs/design.md#objectives): each needs its own requests, so
    # the rarest one sets the rate once a step has shown the mix.
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sized:
    step: PlannedStep
    why: str  # "" when the plan's own lengths were enough
    short: tuple[str, ...] = ()  # segments expected to get too few requests even at the cap


def model_request_s(profile: Profile, *, emulate: bool) -> float:
    """The network model's time of a typical request on a new connection (before any step)."""
    if not emulate:
        return 0.05
    timing = netmodel.predict(
        profile, TYPICAL_REQUEST_BYTES, TYPICAL_RESPONSE_BYTES, new_connection=True
    )
    return min(timing.total_ms / 1000.0 + 0.05, profile.network.timeout_s)


def initial_paces(
    profiles: Sequence[Profile], shares: Mapping[str, float], *, model: str, emulate: bool
) -> list[Pace]:
    """Paces before any step: model times, one request per iteration."""
    paces = []
    for p in profiles:
        request_s = model_request_s(p, emulate=emulate)
        per_load = (
            shares[p.name] if model == "open" else shares[p.name] / (request_s + ASSUMED_THINK_S)
        )
        keys = tuple(dict.fromkeys(o.key for o in p.slo.objectives))
        # Each objective is judged on its own endpoint's requests; before a step has shown the
        # mix, each is assumed to get an equal part of them.
        per_load /= max(len(keys), 1)
        cap = min(max(p.slo.p95_ms / 1000.0, request_s), p.network.timeout_s)
        paces.append(
            Pace(p.name, shares[p.name], request_s, per_load, p.network.timeout_s, cap, keys)
        )
    return paces


def learn_paces(paces: Sequence[Pace], done: Sequence[StepResult]) -> list[Pace]:
    """Paces updated from the latest trusted step that measured each segment."""
    out = []
    for pace in paces:
        request_s, per_load = pace.request_s, pace.requests_per_load_s
        for step in reversed(done):
            seg = step.segments.get(pace.name)
            if (
                step.generator.bound
                or seg is None
                or step.measured_s <= 0
                or step.load <= 0
                or seg.requests == 0
            ):
                continue
            per_load = seg.requests / step.measured_s / step.load
            seen = [seg.endpoints[k].requests for k in pace.keys if k in seg.endpoints]
            if seen and min(seen) > 0:
                per_load = min(seen) / step.measured_s / step.load
            if seg.p95_ms is not None:
                request_s = min(seg.p95_ms / 1000.0, pace.cap_s)
            break
        out.append(replace(pace, request_s=request_s, requests_per_load_s=per_load))
    return out


def size_step(step: PlannedStep, load: float, paces: Sequence[Pace], plan: Plan) -> Sized:
    """The step with its warm-up and hold stretched for the slowest segment (never shortened),
    the hold capped at plan.max_hold_s."""
    if not paces or load <= 0:
        return Sized(step, "")
    slowest = max(paces, key=lambda p: p.request_s)
    warmup = max(step.warmup_s, math.ceil(slowest.request_s))
    needs = []
    for pace in paces:
        rate = load * pace.requests_per_load_s
        need = EXPECTED_REQUESTS / rate if rate > 0 else math.inf
        needs.append((max(need, HOLD_P95_MULTIPLE * pace.request_s), pace))
    need_s, needy = max(needs, key=lambda n: n[0])
    hold = min(max(step.hold_s, math.ceil(need_s)), max(plan.max_hold_s, step.hold_s))
    short = tuple(
        pace.name for need, pace in needs if load * pace.requests_per_load_s * hold < MIN_REQUESTS
    )
    reasons = []
    if warmup > step.warmup_s + 1e-9:
        reasons.append(
            f"warm-up {warmup:g} s: {slowest.name}'s requests last about {slowest.request_s:.3g} s"
        )
    if hold > step.hold_s + 1e-9:
        expected = load * needy.requests_per_load_s * hold
        reasons.append(
            f"hold {hold:g} s: {needy.name} completes about {expected:.0f} requests in it "
            f"(a verdict needs {MIN_REQUESTS})"
        )
    sized = replace(step, warmup_s=warmup, hold_s=hold)
    return Sized(sized, "; ".join(reasons), short)
