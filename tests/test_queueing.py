"""Ground truth: the M/M/c queue and its closed (finite-population) twin."""

from __future__ import annotations

import heapq
import math
import random

import numpy as np
import pytest

from breakpoint.sim import queueing as q


def test_erlang_c_matches_textbook_values() -> None:
    """Erlang C is rho for one server and 1/3 for two servers at one erlang."""
    assert q.erlang_c(1, 0.7) == pytest.approx(0.7)
    assert q.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert q.erlang_c(8, 0.0) == 0.0
    assert q.erlang_c(8, 8.0) == 1.0


def test_sojourn_of_mm1_is_exponential() -> None:
    """With one server the sojourn time is exponential with rate mu - lambda."""
    for t in (0.01, 0.1, 0.5):
        assert q.sojourn_tail(t, 1, 0.02, 30.0) == pytest.approx(math.exp(-(50 - 30) * t))


def test_sojourn_tail_is_continuous_where_c_mu_minus_lambda_equals_mu() -> None:
    """The special case theta == mu agrees with its neighbours (no 0/0)."""
    c, service_s = 2, 1.0
    exact = q.sojourn_tail(1.5, c, service_s, 1.0)  # theta = 2 - 1 = mu
    near = q.sojourn_tail(1.5, c, service_s, 1.0 + 1e-7)
    assert math.isfinite(exact)
    assert exact == pytest.approx(near, rel=1e-5)


def test_p95_is_infinite_at_capacity_and_the_service_p95_when_idle() -> None:
    """An unstable queue has no p95; an idle one has the exponential service's ln(20) S."""
    assert q.sojourn_p95_s(8, 0.02, 400.0) == math.inf
    assert q.sojourn_p95_s(8, 0.02, 0.0) == pytest.approx(0.02 * math.log(20), rel=1e-6)


def test_break_rate_reproduces_design_example() -> None:
    """c=8, S=20 ms, SLO 250 ms breaks at 387.3 req/s, 9.68X of 40 req/s (the ground truth)."""
    rate = q.break_rate(8, 0.020, 250.0)
    assert rate == pytest.approx(387.3, abs=0.05)
    assert round(rate / 40, 2) == 9.68


@pytest.mark.parametrize(
    ("added_ms", "multiplier"),
    [
        pytest.param(50, 9.59, id="50ms"),
        pytest.param(100, 9.43, id="100ms"),
        pytest.param(150, 9.02, id="150ms"),
    ],
)
def test_break_rate_with_added_network_time(added_ms: float, multiplier: float) -> None:
    """Added network time moves the break to the multipliers of docs/design.md#analysis."""
    assert round(q.break_rate(8, 0.020, 250.0, added_ms) / 40, 2) == multiplier


def test_break_rate_is_zero_when_idle_already_misses_slo() -> None:
    """A budget below the idle p95 breaks at any load."""
    assert q.break_rate(8, 0.020, 200.0, added_ms=150.0) == 0.0


def test_closed_break_reproduces_design_example() -> None:
    """40 users with 1 s think time: the break is near 461 users, 11.5X (the ground truth)."""
    users = q.closed_break_users(8, 0.020, 1.0, 250.0)
    assert users == pytest.approx(461, abs=1.5)
    assert round(users / 40, 1) == 11.5


def test_closed_mva_cross_check_is_pessimistic() -> None:
    """MVA means with the exponential p95/mean ratio break earlier than the exact tail."""
    assert q.closed_break_users_mva(8, 0.020, 1.0, 250.0) < q.closed_break_users(
        8, 0.020, 1.0, 250.0
    )


def _simulate_closed(users: int, c: int, service_s: float, think_s: float) -> tuple[float, float]:
    """A tiny seeded discrete-event simulation: (throughput, p95 response)."""
    rng = random.Random(7)
    horizon = 20_000.0
    events = [(rng.expovariate(1 / think_s), "arrive", u) for u in range(users)]
    heapq.heapify(events)
    busy, queue, started, responses = 0, [], {}, []
    while events:
        t, kind, user = heapq.heappop(events)
        if t > horizon:
            break
        if kind == "arrive":
            started[user] = t
            if busy < c:
                busy += 1
                heapq.heappush(events, (t + rng.expovariate(1 / service_s), "leave", user))
            else:
                queue.append(user)
        else:
            responses.append(t - started[user])
            heapq.heappush(events, (t + rng.expovariate(1 / think_s), "arrive", user))
            if queue:
                nxt = queue.pop(0)
                heapq.heappush(events, (t + rng.expovariate(1 / service_s), "leave", nxt))
            else:
                busy -= 1
    return len(responses) / horizon, float(np.percentile(responses[500:], 95))


def test_closed_model_matches_simulation() -> None:
    """Throughput and p95 of the exact closed model agree with a discrete-event simulation."""
    users, c, service_s, think_s = 10, 2, 0.1, 0.5
    rate, p95 = _simulate_closed(users, c, service_s, think_s)
    assert q.closed_throughput_rps(users, c, service_s, think_s) == pytest.approx(rate, rel=0.02)
    assert q.closed_p95_s(users, c, service_s, think_s) == pytest.approx(p95, rel=0.03)


def test_closed_single_server_tail_has_no_rate_collision() -> None:
    """With one server the Erlang and service rates coincide and the tail stays a probability."""
    tail = q.closed_response_tail(0.3, 5, 1, 0.1, 0.2)
    assert 0.0 < tail < 1.0


def test_finite_queue_without_waiting_room_is_erlang_b() -> None:
    """With no place to wait, M/M/c/c blocks with Erlang B: 0.2 for two servers at one erlang."""
    assert q.finite_blocking(2, 0, 1.0, 1.0) == pytest.approx(0.2)
    assert q.finite_blocking(1, 0, 1.0, 3.0) == pytest.approx(3 / 4)
    assert q.finite_blocking(8, 8, 0.020, 0.0) == 0.0


def test_single_server_finite_queue_matches_its_closed_form() -> None:
    """M/M/1/K blocks with (1 - rho) rho^K / (1 - rho^(K+1))."""
    rho, k = 0.5, 4
    expected = (1 - rho) * rho**k / (1 - rho ** (k + 1))
    assert q.finite_blocking(1, k - 1, 0.1, rho / 0.1) == pytest.approx(expected)


def test_finite_queue_with_a_large_room_is_the_mmc_queue() -> None:
    """With room for hundreds, nobody is turned away and the p95 sojourn is Erlang C's."""
    assert q.finite_blocking(8, 400, 0.020, 300.0) < 1e-12
    assert q.finite_sojourn_p95_s(8, 400, 0.020, 300.0) == pytest.approx(
        q.sojourn_p95_s(8, 0.020, 300.0), rel=1e-6
    )


def test_finite_blocking_break_of_the_accuracy_benchmark() -> None:
    """M/M/8/16 at 20 ms reaches a 1% error rate at 7.57X of 40 req/s (benchmarks/accuracy.py)."""
    rate = q.finite_blocking_break_rate(8, 8, 0.020, 0.01)
    assert q.finite_blocking(8, 8, 0.020, rate) == pytest.approx(0.01)
    assert round(rate / 40, 2) == 7.57
    with pytest.raises(ValueError):
        q.finite_blocking_break_rate(8, 8, 0.020, 0.0)


def _simulate_finite(c: int, max_queue: int, service_s: float, rate: float) -> tuple[float, float]:
    """A tiny seeded FCFS simulation: (blocked fraction, p95 sojourn of accepted requests)."""
    rng = random.Random(11)
    t, free_at, blocked, sojourns = 0.0, [0.0] * c, 0, []
    waiting: list[float] = []  # start times of accepted requests not yet served
    for _ in range(60_000):
        t += rng.expovariate(rate)
        in_system = sum(1 for f in free_at if f > t) + sum(1 for s in waiting if s > t)
        waiting = [s for s in waiting if s > t]
        if in_system >= c + max_queue:
            blocked += 1
            continue
        server = min(range(c), key=lambda i: free_at[i])
        start = max(t, free_at[server])
        free_at[server] = start + rng.expovariate(1 / service_s)
        if start > t:
            waiting.append(start)
        sojourns.append(free_at[server] - t)
    return blocked / 60_000, float(np.percentile(sojourns[1000:], 95))


def test_finite_queue_matches_simulation() -> None:
    """Blocking and p95 sojourn of M/M/2/4 agree with a discrete-event simulation."""
    c, max_queue, service_s, rate = 2, 2, 0.1, 18.0
    blocked, p95 = _simulate_finite(c, max_queue, service_s, rate)
    assert q.finite_blocking(c, max_queue, service_s, rate) == pytest.approx(blocked, rel=0.05)
    assert q.finite_sojourn_p95_s(c, max_queue, service_s, rate) == pytest.approx(p95, rel=0.04)
