"""One segment's step measured on a simulated system instead of a target, as the recorder would.

Every segment shares one M/M/c server (c workers, exponential service time); each request's
experienced latency is its profile's network and device time (netmodel.predict, the emulator's
own equations) plus a sojourn drawn from that queue. Above capacity the queue grows for the whole
step, so latency trends up, completions fall short of arrivals and timeouts appear. Histograms
are real HdrHistograms, so the analysis reads these steps as it reads measured ones. Used by
runbuilder.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from breakpoint.histograms import encode_histogram, mean_us, new_histogram, percentiles_ms
from breakpoint.plan import netmodel
from breakpoint.plan.profiles import Profile
from breakpoint.results import EndpointStats, SegmentStep, Series
from breakpoint.sim.queueing import erlang_c

SCRIPT_ENDPOINT = "<script>alert(1)</script>"


@dataclass(frozen=True)
class Endpoint:
    """One request of the simulated scenario: its weight in the mix, sizes and server work."""

    name: str
    weight: float
    request_bytes: int
    response_bytes: int
    work: float  # mean service time as a multiple of the server's mean


# The mix's mean work is 1, so the server's mean service time is what `service_ms` says. The
# hostile name is the heaviest endpoint: it degrades first and so is named by the diagnosis.
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("/api/page", 6.0, 400, 2_048, 0.9),
    Endpoint("/api/search", 3.0, 450, 6_144, 1.1),
    Endpoint("/static/asset.bin", 1.0, 350, 20_480, 0.2),
    Endpoint(SCRIPT_ENDPOINT, 1.0, 800, 4_096, 1.8),
)
NEW_CONNECTION_SHARE = 0.15  # requests that open a connection (the rest reuse one)
NETWORK_NOISE = 0.04  # lognormal spread of network time around the model (jitter, scheduling)
CLIENT_4XX_RATE = 0.002  # a scenario's own mistakes: present at every load


@dataclass(frozen=True)
class Server:
    """The simulated target: an M/M/c queue."""

    workers: int = 8
    service_ms: float = 24.0  # capacity 333 req/s: 8.3X of the default 40 req/s baseline

    @property
    def capacity_rps(self) -> float:
        return self.workers / (self.service_ms / 1000.0)


def _mean_weight() -> float:
    total = sum(e.weight for e in ENDPOINTS)
    return sum(e.weight * e.work for e in ENDPOINTS) / total


@dataclass(frozen=True)
class Costs:
    """Per endpoint: network time on a new and on a kept-alive connection, and device time."""

    network_new: np.ndarray
    network_kept: np.ndarray
    device: np.ndarray


def costs_of(profile: Profile) -> Costs:
    new, kept, device = [], [], []
    for e in ENDPOINTS:
        cold = netmodel.predict(profile, e.request_bytes, e.response_bytes, new_connection=True)
        warm = netmodel.predict(profile, e.request_bytes, e.response_bytes, new_connection=False)
        new.append(cold.network_ms)
        kept.append(warm.network_ms)
        device.append(cold.device_ms)
    return Costs(np.array(new), np.array(kept), np.array(device))


def segment_step(
    rng: np.random.Generator,
    profile: Profile,
    costs: Costs,
    share: float,
    total_rps: float,
    server: Server,
    hold_s: float,
) -> SegmentStep:
    """What the segment (`share` of `total_rps` arrivals) measures over `hold_s` seconds."""
    offered = total_rps * share
    service_s = server.service_ms / 1000.0 / _mean_weight()  # per unit of work
    rho = total_rps * server.service_ms / 1000.0 / server.workers
    arrivals = int(rng.poisson(offered * hold_s))
    # Above capacity the server completes at capacity and the queue grows through the step.
    n = arrivals if rho <= 1 else int(rng.binomial(arrivals, 1.0 / rho))
    t = np.sort(rng.uniform(0.0, hold_s, n))
    weights = np.array([e.weight for e in ENDPOINTS])
    which = rng.choice(len(ENDPOINTS), size=n, p=weights / weights.sum())
    work = np.array([e.work for e in ENDPOINTS])[which]
    service = rng.exponential(service_s, n) * work
    # Erlang C waiting (Exp(c/S - lambda) with probability C); near and past capacity the steady
    # state of a queue just below it, plus the growth of the backlog below.
    stable_rho = min(rho, 0.985)
    p_wait = erlang_c(server.workers, stable_rho * server.workers)
    decay = server.workers / (server.service_ms / 1000.0) * (1 - stable_rho)
    waited = rng.random(n) < p_wait
    wait = np.where(waited, rng.exponential(1.0 / decay, n), 0.0)
    if rho >= 1:
        # Queue length grows at (lambda - capacity) per second; each waits queue / capacity.
        wait = wait + (rho - 1.0) * (t + 2.0)
    new_conn = rng.random(n) < NEW_CONNECTION_SHARE
    network = np.where(new_conn, costs.network_new[which], costs.network_kept[which])
    network = network * rng.lognormal(0.0, NETWORK_NOISE, n)
    device = costs.device[which] * rng.lognormal(0.0, NETWORK_NOISE, n)
    server_ms = (service + wait) * 1000.0
    total = network + server_ms + device
    timeout_ms = profile.network.timeout_s * 1000.0
    timed_out = total > timeout_ms
    total = np.minimum(total, timeout_ms)
    errors: dict[str, int] = {}
    kinds = np.full(n, "", dtype=object)
    kinds[rng.random(n) < CLIENT_4XX_RATE] = "http_4xx"
    # Past capacity the target sheds load: 503s and refused connections grow with the excess.
    overload = max(0.0, rho - 1.0)
    kinds[rng.random(n) < min(0.2, overload * 0.5)] = "http_5xx"
    kinds[rng.random(n) < min(0.1, overload * 0.2)] = "connection"
    kinds[timed_out] = "timeout"
    for kind in ("timeout", "connection", "http_4xx", "http_5xx"):
        count = int(np.sum(kinds == kind))
        if count:
            errors[kind] = count
    failed = kinds != ""
    encoded, pct = _measured(total)
    endpoints = {}
    for i, e in enumerate(ENDPOINTS):
        mask = which == i
        ep_encoded, ep_pct = _measured(total[mask])
        endpoints[e.name] = EndpointStats(
            requests=int(mask.sum()),
            errors=int((failed & mask).sum()),
            p50_ms=ep_pct["p50_ms"],
            p95_ms=ep_pct["p95_ms"],
            p99_ms=ep_pct["p99_ms"],
            histogram=ep_encoded,
        )
    second = np.minimum(t.astype(int), int(hold_s) - 1)
    seconds = int(hold_s)
    completed = np.bincount(second, minlength=seconds)
    per_s_errors = np.bincount(second, weights=failed, minlength=seconds)
    per_s_sum = np.bincount(second, weights=total, minlength=seconds)
    mean_series = tuple(
        float(s / c) if c else None for s, c in zip(per_s_sum, completed, strict=True)
    )
    return SegmentStep(
        segment=profile.name,
        requests=n,
        errors=errors,
        offered_rps=arrivals / hold_s,
        completed_rps=n / hold_s,
        p50_ms=pct["p50_ms"],
        p90_ms=pct["p90_ms"],
        p95_ms=pct["p95_ms"],
        p99_ms=pct["p99_ms"],
        max_ms=pct["max_ms"],
        mean_ms=pct["mean_ms"],
        histogram=encoded,
        parts_ms=(
            {
                "network": float(network.mean()),
                "server": float(server_ms.mean()),
                "device": float(device.mean()),
            }
            if n
            else {}
        ),
        endpoints=endpoints,
        series=Series(
            completed=tuple(int(c) for c in completed),
            errors=tuple(int(e) for e in per_s_errors),
            mean_ms=mean_series,
            slow=(),
        ),
        unfinished=arrivals - n,
    )


def _measured(values_ms: np.ndarray) -> tuple[str, dict[str, float | None]]:
    """The encoded histogram of the values and its percentiles, as the recorder computes them.

    Same numbers as histograms.percentiles_ms (hdrh's count rounding, highest equivalent value),
    taken from the sorted values instead of a walk over the counts: 50 times faster.
    """
    hist = new_histogram()
    if not len(values_ms):
        return "", percentiles_ms(hist)
    us = np.sort(np.clip(np.rint(values_ms * 1000.0), 1, None).astype(np.int64))
    # Record each bucket once with its count: a value and its bucket's lowest equivalent value
    # land in the same bucket (3 digits: 2048 sub-buckets, then halving resolution per octave).
    shift = np.maximum(np.floor(np.log2(us)).astype(np.int64) - 10, 0)
    lowest = (us >> shift) << shift
    for value, count in zip(*np.unique(lowest, return_counts=True), strict=True):
        hist.record_value(int(value), int(count))
    n = len(us)

    def at(q: float) -> float:
        rank = max(int(q * n / 100 + 0.5), 1)
        return hist.get_highest_equivalent_value(int(us[rank - 1])) / 1000.0

    pct: dict[str, float | None] = {
        "p50_ms": at(50),
        "p90_ms": at(90),
        "p95_ms": at(95),
        "p99_ms": at(99),
        "max_ms": hist.get_highest_equivalent_value(int(us[-1])) / 1000.0,
        "mean_ms": mean_us(hist) / 1000.0,
    }
    return encode_histogram(hist), pct
