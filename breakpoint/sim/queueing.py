"""Queueing ground truth: the M/M/c queue (open model) and its finite-population twin (closed).

The embedded demo target is c workers with exponential service time S, fed either by Poisson
arrivals (open model) or by N users who think for Z between requests (closed model). Both have
exact answers, which the acceptance tests and the benchmarks use to judge the analysis:

- open: Erlang C gives the probability of waiting; the sojourn time (wait + service) of an FCFS
  M/M/c queue has a closed-form tail, whose p95 we solve numerically;
- closed: the machine-repairman model (M/M/c//N) is a birth-death chain; by the arrival theorem an
  arriving request sees the chain with N-1 users, so its response-time tail is a mixture of
  Erlang-plus-exponential tails. This is exact (the think-time distribution does not matter for
  the state probabilities) and avoids MVA's mean-only answer.

Rates are per second, times in seconds unless the name says `_ms`. Pure: numpy/scipy only.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special, stats


def erlang_c(c: int, offered_erlangs: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with offered load a = lambda * S."""
    if c < 1:
        raise ValueError("c must be >= 1")
    a = offered_erlangs
    if a <= 0:
        return 0.0
    if a >= c:
        return 1.0
    # Erlang B by its stable recursion, then C from B (no factorials, no overflow for large c).
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1.0 - b))


def sojourn_tail(t_s: float, c: int, service_s: float, arrival_rps: float) -> float:
    """P(T > t) for the sojourn time T = wait + service of an FCFS M/M/c queue (stable only)."""
    mu = 1.0 / service_s
    theta = c * mu - arrival_rps  # decay rate of the waiting-time tail
    if theta <= 0:
        return 1.0
    if t_s <= 0:
        return 1.0
    p_wait = erlang_c(c, arrival_rps * service_s)
    no_wait = math.exp(-mu * t_s)
    # W ~ Exp(theta) when waiting; the tail of W + S is a difference of exponentials, which
    # degenerates to an Erlang-2 tail when theta == mu (i.e. c*mu - lambda == mu).
    if math.isclose(theta, mu, rel_tol=1e-9):
        waited = (1.0 + mu * t_s) * math.exp(-mu * t_s)
    else:
        waited = (theta * math.exp(-mu * t_s) - mu * math.exp(-theta * t_s)) / (theta - mu)
    return (1.0 - p_wait) * no_wait + p_wait * waited


def _quantile(tail: object, q_tail: float, scale_s: float) -> float:
    """Solve tail(t) = q_tail for t by bracketing then brentq; tail must decrease in t."""
    assert callable(tail)
    hi = scale_s
    while tail(hi) > q_tail:
        hi *= 2.0
        if hi > 1e9:
            return math.inf
    return float(optimize.brentq(lambda t: tail(t) - q_tail, 0.0, hi, xtol=1e-12, rtol=1e-12))


def sojourn_p95_s(c: int, service_s: float, arrival_rps: float, q: float = 0.95) -> float:
    """The q-quantile (default p95) of the M/M/c sojourn time; inf when the queue is unstable."""
    if arrival_rps >= c / service_s:
        return math.inf
    return _quantile(lambda t: sojourn_tail(t, c, service_s, arrival_rps), 1.0 - q, service_s)


def capacity_rps(c: int, service_s: float) -> float:
    return c / service_s


def break_rate(c: int, service_s: float, slo_ms: float, added_ms: float = 0.0) -> float:
    """Arrival rate (req/s) at which p95 sojourn + added_ms reaches slo_ms.

    0.0 when even an idle server misses the SLO (the break is below any load).
    """
    budget_s = (slo_ms - added_ms) / 1000.0
    if budget_s <= 0 or sojourn_p95_s(c, service_s, 0.0) >= budget_s:
        return 0.0
    cap = capacity_rps(c, service_s)

    def excess(rate: float) -> float:
        return sojourn_p95_s(c, service_s, rate) - budget_s

    # p95 rises monotonically to infinity at capacity, so the root is inside (0, capacity).
    hi = cap * (1.0 - 1e-12)
    return float(optimize.brentq(excess, 0.0, hi, xtol=1e-9, rtol=1e-12))


# --- finite queue: M/M/c/K, arrivals finding the system full are turned away -----------------


def finite_state_probs(c: int, max_queue: int, service_s: float, arrival_rps: float) -> np.ndarray:
    """Stationary P(n in system), n = 0..c + max_queue, of an M/M/c queue with max_queue places.

    p_n is proportional to a^n / n! up to c and to a^c / c! (a / c)^(n - c) above, a being the
    offered load lambda * S; computed in logs, so large loads do not overflow.
    """
    if c < 1 or max_queue < 0:
        raise ValueError("c must be >= 1 and max_queue >= 0")
    size = c + max_queue + 1
    a = arrival_rps * service_s
    if a <= 0:
        probs = np.zeros(size)
        probs[0] = 1.0
        return probs
    n = np.arange(size)
    log_p = np.where(
        n <= c,
        n * math.log(a) - special.gammaln(n + 1),
        c * math.log(a) - special.gammaln(c + 1) + (n - c) * math.log(a / c),
    )
    log_p -= special.logsumexp(log_p)
    return np.asarray(np.exp(log_p))


def finite_blocking(c: int, max_queue: int, service_s: float, arrival_rps: float) -> float:
    """P(an arrival finds the M/M/c/K system full), K = c + max_queue (PASTA): its error rate."""
    return float(finite_state_probs(c, max_queue, service_s, arrival_rps)[-1])


def finite_blocking_break_rate(
    c: int, max_queue: int, service_s: float, error_rate: float
) -> float:
    """Arrival rate (req/s) at which the blocking probability reaches error_rate."""
    if not 0 < error_rate < 1:
        raise ValueError("error_rate must be between 0 and 1")
    hi = c / service_s
    while finite_blocking(c, max_queue, service_s, hi) < error_rate:
        hi *= 2.0  # blocking rises monotonically to 1 as the load grows
    return float(
        optimize.brentq(
            lambda rate: finite_blocking(c, max_queue, service_s, rate) - error_rate,
            0.0,
            hi,
            xtol=1e-9,
        )
    )


def finite_sojourn_p95_s(
    c: int, max_queue: int, service_s: float, arrival_rps: float, q: float = 0.95
) -> float:
    """The q-quantile (default p95) of the sojourn of accepted requests in M/M/c/K (FCFS).

    An accepted arrival sees n < K in system (PASTA, conditioned on not being blocked); with
    n >= c it waits for n - c + 1 departures at rate c / S (Erlang), then is served.
    """
    probs = finite_state_probs(c, max_queue, service_s, arrival_rps)[:-1]
    probs = probs / probs.sum()
    mu = 1.0 / service_s

    def tail(t_s: float) -> float:
        if t_s <= 0:
            return 1.0
        free = float(probs[:c].sum()) * math.exp(-mu * t_s)
        if len(probs) <= c:
            return min(1.0, free)
        k = np.arange(1, len(probs) - c + 1)
        queued = float(np.dot(probs[c:], _erlang_plus_exp_tail(t_s, k, c * mu, mu)))
        return min(1.0, free + queued)

    return _quantile(tail, 1.0 - q, service_s)


# --- closed model: N users, think time Z, c servers with exponential service S ----------------


def closed_state_probs(users: int, c: int, service_s: float, think_s: float) -> np.ndarray:
    """Stationary P(n requests at the server), n = 0..users, of the machine-repairman chain."""
    n = np.arange(users + 1)
    if think_s <= 0:
        # No think time: every user is always at the server.
        probs = np.zeros(users + 1)
        probs[-1] = 1.0
        return probs
    # Birth rate (users - n) / Z, death rate min(n, c) / S; work in logs to avoid overflow.
    log_p = np.zeros(users + 1)
    births = np.log(np.maximum(users - n[:-1], 1e-300)) - math.log(think_s)
    deaths = np.log(np.minimum(n[1:], c)) - math.log(service_s)
    log_p[1:] = np.cumsum(births - deaths)
    log_p -= special.logsumexp(log_p)
    return np.exp(log_p)


def closed_throughput_rps(users: int, c: int, service_s: float, think_s: float) -> float:
    """Completed requests per second: busy servers / S."""
    probs = closed_state_probs(users, c, service_s, think_s)
    busy = np.minimum(np.arange(users + 1), c)
    return float(np.dot(probs, busy) / service_s)


def closed_mean_response_s(users: int, c: int, service_s: float, think_s: float) -> float:
    """Mean response time by Little's law on the whole loop: R = N / X - Z."""
    return users / closed_throughput_rps(users, c, service_s, think_s) - think_s


def closed_response_tail(t_s: float, users: int, c: int, service_s: float, think_s: float) -> float:
    """P(R > t) for one request: mixture over what the arrival sees (the N-1 user chain)."""
    if t_s <= 0:
        return 1.0
    seen = closed_state_probs(users - 1, c, service_s, think_s)
    mu = 1.0 / service_s
    free = float(seen[:c].sum()) * math.exp(-mu * t_s)
    if len(seen) <= c:
        return min(1.0, free)
    # An arrival that sees n >= c waits for k = n - c + 1 departures (Erlang(k, c mu)), then
    # is served (Exp(mu)).
    k = np.arange(1, len(seen) - c + 1)
    queued = np.dot(seen[c:], _erlang_plus_exp_tail(t_s, k, c * mu, mu))
    return min(1.0, free + float(queued))


def _erlang_plus_exp_tail(t_s: float, k: np.ndarray, rate: float, mu: float) -> np.ndarray:
    """P(E_k + X > t) with E_k ~ Erlang(k, rate) and X ~ Exp(mu), rate > mu."""
    # Conditioning on E_k: P(E_k > t) + int_0^t f_E(s) exp(-mu (t - s)) ds, and the integral is
    # exp(-mu t) (rate / (rate - mu))^k P(Gamma(k, rate - mu) <= t).
    erl = stats.gamma.sf(t_s, k, scale=1.0 / rate)
    d = rate - mu
    if d <= 0:
        # c == 1: the two rates coincide and the sum is Erlang(k + 1, mu).
        return np.asarray(stats.gamma.sf(t_s, k + 1, scale=1.0 / mu))
    log_term = -mu * t_s + k * math.log(rate / d) + stats.gamma.logcdf(t_s, k, scale=1.0 / d)
    return np.asarray(erl + np.exp(log_term))


def closed_p95_s(users: int, c: int, service_s: float, think_s: float, q: float = 0.95) -> float:
    """The q-quantile (default p95) of the closed model's response time."""
    return _quantile(
        lambda t: closed_response_tail(t, users, c, service_s, think_s), 1.0 - q, service_s
    )


def closed_break_users(
    c: int, service_s: float, think_s: float, slo_ms: float, added_ms: float = 0.0
) -> float:
    """Users at which p95 response + added_ms reaches slo_ms (interpolated between integers).

    Added (network/device) time lengthens each user's cycle like extra think time. 0.0 when one
    user already misses the SLO.
    """
    budget_s = (slo_ms - added_ms) / 1000.0
    cycle_s = think_s + added_ms / 1000.0

    def p95(n: int) -> float:
        return closed_p95_s(n, c, service_s, cycle_s)

    if budget_s <= 0 or p95(1) >= budget_s:
        return 0.0
    lo, hi = 1, 2
    while p95(hi) < budget_s:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if p95(mid) < budget_s:
            lo = mid
        else:
            hi = mid
    p_lo, p_hi = p95(lo), p95(hi)
    return lo + (budget_s - p_lo) / (p_hi - p_lo)


def closed_break_users_mva(
    c: int, service_s: float, think_s: float, slo_ms: float, p95_over_mean: float = 3.0
) -> float:
    """Approximate closed break from exact MVA mean response times and a fixed p95/mean ratio.

    A cross-check only: near saturation the response time is nearly exponential (ratio ln 20,
    about 3), which makes this pessimistic compared with closed_break_users.
    """
    target_s = slo_ms / 1000.0 / p95_over_mean
    # Exact MVA for a load-dependent c-server station (Reiser-Lavenberg with marginal probs).
    probs = np.array([1.0])  # P(j at station | n users), n = 0
    n = 0
    prev_r = 0.0
    while n < 1_000_000:
        n += 1
        j = np.arange(1, n + 1)
        # Residence time with load-dependent service rate min(j, c) / S.
        r = float(np.sum(j * service_s / np.minimum(j, c) * probs[j - 1]))
        x = n / (think_s + r)
        new = np.zeros(n + 1)
        new[1:] = x * service_s / np.minimum(j, c) * probs[j - 1]
        new[0] = max(0.0, 1.0 - new[1:].sum())
        probs = new
        if r >= target_s:
            return (n - 1) + (target_s - prev_r) / (r - prev_r)
        prev_r = r
    return math.inf
