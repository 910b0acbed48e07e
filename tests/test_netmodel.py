"""Tests for netmodel: the pure timing model of an emulated user's network and device."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakpoint.plan import netmodel
from breakpoint.plan.netmodel import DownloadSchedule, predict
from breakpoint.plan.profiles import Device, Network, Profile, Slo, builtin_profiles

PROFILES = builtin_profiles()


def _profile(**network: float) -> Profile:
    base = {"rtt_ms": 100.0, "down_kbps": 800.0, "up_kbps": 400.0}
    base.update(network)
    return Profile(
        name="t",
        description="t",
        share=1.0,
        network=Network(**base),  # type: ignore[arg-type]
        device=Device(cpu_slowdown=2.0, base_ms=3.0, ms_per_kb=0.5),
        slo=Slo(p95_ms=1000),
    )


def test_warm_small_response_is_one_rtt_plus_transfers_plus_device() -> None:
    """Warm, no slow start: RTT + upload + download at line rate + scaled device time."""
    t = predict(_profile(), 500, 10_000, new_connection=False)
    assert t.setup_ms == 0
    assert t.request_ms == 100
    assert t.upload_ms == pytest.approx(500 * 8 / 400)
    assert t.download_ms == pytest.approx(10_000 * 8 / 800)
    assert t.slow_start_rounds == 0 and t.slow_start_ms == 0
    assert t.device_ms == pytest.approx((3.0 + 0.5 * 10_000 / 1024) * 2.0)
    assert t.total_ms == pytest.approx(t.network_ms + t.device_ms)
    assert t.network_ms == pytest.approx(100 + 10 + 100)


@pytest.mark.parametrize(
    ("new", "tls", "rtts"),
    [
        pytest.param(False, False, 0, id="warm"),
        pytest.param(False, True, 0, id="warm-tls"),
        pytest.param(True, False, 1, id="cold"),
        pytest.param(True, True, 2, id="cold-tls"),
    ],
)
def test_connection_setup_costs_tcp_and_tls_round_trips(new: bool, tls: bool, rtts: int) -> None:
    """A new connection costs 1 RTT for TCP and 1 more for TLS; a kept-alive one nothing."""
    t = predict(_profile(), 500, 1000, new_connection=new, tls=tls)
    assert t.setup_ms == pytest.approx(rtts * 100)


def test_cold_large_response_waits_slow_start_rounds() -> None:
    """android-slow4g: BDP 30 KB, IW 14.6 KB: a cold 200 KB response waits two round trips."""
    p = PROFILES["android-slow4g"]
    size = 200 * 1024
    cold = predict(p, 400, size, new_connection=True)
    warm = predict(p, 400, size, new_connection=False)
    rate = 1600 / 8  # bytes per ms
    assert cold.slow_start_rounds == 2
    # Rounds: 14600 B at t=0, 29200 B at t=RTT, the rest from t=2 RTT at line rate.
    assert cold.download_ms == pytest.approx(2 * 150 + (size - 43_800) / rate)
    assert warm.download_ms == pytest.approx(size / rate)
    assert cold.slow_start_ms == pytest.approx(cold.download_ms - warm.download_ms)
    assert cold.total_ms - warm.total_ms == pytest.approx(150 + cold.slow_start_ms)


def test_cold_response_within_the_initial_window_has_no_extra_round() -> None:
    """A 10 KB response fits in IW10 (14.6 KB): cold costs only the handshake."""
    p = PROFILES["android-midtier-3g"]
    cold = predict(p, 400, 10_240, new_connection=True)
    warm = predict(p, 400, 10_240, new_connection=False)
    assert cold.slow_start_rounds == 0
    assert cold.total_ms - warm.total_ms == pytest.approx(p.network.rtt_ms)


def test_no_slow_start_when_the_initial_window_covers_the_bdp() -> None:
    """2g-rural: BDP = 20 kbit/s x 1.3 s = 3.25 KB < IW: no waiting rounds at all."""
    p = PROFILES["2g-rural"]
    assert netmodel.bdp_bytes(p.network) == pytest.approx(3250)
    assert predict(p, 400, 204_800, new_connection=True).slow_start_rounds == 0


def test_window_carries_over_and_restarts_after_idle() -> None:
    """The window grows by the bytes delivered and falls back to IW after an RTO of idleness."""
    n = PROFILES["android-slow4g"].network
    iw = netmodel.initial_cwnd_bytes(n)
    schedule = DownloadSchedule(n, iw)
    after = schedule.cwnd_after(20_000)
    assert after == pytest.approx(iw + 20_000)
    assert DownloadSchedule(n, iw).cwnd_after(10**7) == pytest.approx(2 * netmodel.bdp_bytes(n))
    assert netmodel.cwnd_after_idle(n, after, idle_ms=netmodel.rto_ms(n) - 1) == after
    assert netmodel.cwnd_after_idle(n, after, idle_ms=netmodel.rto_ms(n) + 1) == iw
    assert netmodel.rto_ms(n) == pytest.approx(150 + 200)


@settings(max_examples=200, deadline=None)
@given(
    rtt=st.floats(0, 2000),
    kbps=st.floats(1, 100_000),
    cwnd_segments=st.integers(1, 100),
    sizes=st.lists(st.integers(0, 5_000_000), min_size=2, max_size=20),
)
def test_schedule_is_monotone_and_never_beats_the_line_rate(
    rtt: float, kbps: float, cwnd_segments: int, sizes: list[int]
) -> None:
    """The pacing schedule only moves forward and never delivers faster than down_kbps."""
    n = Network(rtt_ms=rtt, down_kbps=kbps, up_kbps=kbps, initial_cwnd_segments=cwnd_segments)
    schedule = DownloadSchedule(n, netmodel.initial_cwnd_bytes(n))
    sizes.sort()
    dues = [schedule.due_ms(s) for s in sizes]
    assert dues == sorted(dues)
    for size, due in zip(sizes, dues, strict=True):
        assert due >= size * 8 / kbps - 1e-6
        # Waiting rounds add at most one RTT each.
        assert due <= size * 8 / kbps + schedule.waiting_rounds(size) * rtt + 1e-6


def test_unlimited_link_costs_nothing() -> None:
    """A profile without emulation predicts zero network and device time."""
    p = PROFILES["android-lowend-3g"].without_emulation()
    t = predict(p, 400, 200_000, new_connection=True, tls=True)
    assert t.total_ms == 0
    assert math.isinf(t.cwnd_after_bytes) or t.cwnd_after_bytes > 0


def test_expected_loss_delay() -> None:
    """Loss: p x (SYN RTOs + 1 RTT per fast-retransmitted packet + 2 RTT per tail packet)."""
    p = _profile(loss_pct=2.0)
    # 1-packet request (tail: 2 RTT); 10 packets of response: 7 x 1 RTT + 3 x 2 RTT.
    warm = netmodel.expected_loss_ms(p.network, 500, 10 * 1460, new_connection=False)
    assert warm == pytest.approx(0.02 * (2 * 100 + 7 * 100 + 3 * 200))
    cold = netmodel.expected_loss_ms(p.network, 500, 10 * 1460, new_connection=True, tls=True)
    assert cold - warm == pytest.approx(0.02 * (2 * 1000 + 5 * 200))
    assert predict(p, 500, 10 * 1460, new_connection=False).loss_ms == pytest.approx(warm)
    assert netmodel.expected_loss_ms(_profile().network, 500, 10**6, new_connection=True) == 0


def test_sampled_losses_average_to_the_expected_delay() -> None:
    """The emulator's draws (seeded) average to the model's expectation."""
    n = PROFILES["2g-rural"].network
    rng = random.Random(7)
    size = 20 * 1460
    draws = 20_000
    total = 0.0
    for _ in range(draws):
        total += sum(d for _, d in netmodel.sample_losses(n, 500, rng))
        total += sum(d for _, d in netmodel.sample_losses(n, size, rng))
        total += netmodel.sample_handshake_loss_ms(n, rng, tls=True)
    expected = netmodel.expected_loss_ms(n, 500, size, new_connection=True, tls=True)
    assert total / draws == pytest.approx(expected, rel=0.05)


def test_losses_stall_at_the_lost_packet() -> None:
    """A drawn loss is placed at its packet's first byte, with the tail rule for its delay."""
    n = _profile(loss_pct=50.0).network
    losses = netmodel.sample_losses(n, 10 * 1460, random.Random(3))
    assert losses
    for offset, delay in losses:
        index = int(offset // 1460)
        assert offset == index * 1460
        assert delay == (100 if index < 7 else 200)


@pytest.mark.parametrize(
    ("rtt", "jitter"),
    [pytest.param(100, 30, id="small-jitter"), pytest.param(20, 60, id="jitter-beyond-rtt")],
)
def test_jitter_mean(rtt: float, jitter: float) -> None:
    """Uniform jitter floored at 0: the model's mean RTT matches the emulator's draws."""
    n = Network(rtt_ms=rtt, down_kbps=1000, up_kbps=1000, jitter_ms=jitter)
    rng = random.Random(11)
    mean = sum(netmodel.sample_rtt_ms(n, rng) for _ in range(50_000)) / 50_000
    assert mean == pytest.approx(netmodel.expected_rtt_ms(n), rel=0.01)
    assert all(netmodel.sample_rtt_ms(n, rng) >= 0 for _ in range(1000))


def test_device_time_scales_with_size_and_cpu() -> None:
    """(base + per-KB + scenario cost) x cpu_slowdown."""
    d = Device(cpu_slowdown=6.0, base_ms=2.0, ms_per_kb=0.05)
    assert netmodel.device_ms(d, 0) == pytest.approx(12.0)
    assert netmodel.device_ms(d, 200 * 1024) == pytest.approx((2 + 10) * 6)
    assert netmodel.device_ms(d, 1024, extra_ms=30) == pytest.approx((2 + 0.05 + 30) * 6)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_describe_rows(name: str) -> None:
    """describe(): 10 KB and 200 KB, cold and warm; cold >= warm and big > small."""
    rows = netmodel.describe(PROFILES[name])
    assert [(r["response"], r["connection"]) for r in rows] == [
        ("10 KB", "cold"),
        ("10 KB", "warm"),
        ("200 KB", "cold"),
        ("200 KB", "warm"),
    ]
    small_cold, small_warm, big_cold, big_warm = (r["total_ms"] for r in rows)
    assert small_cold > small_warm and big_cold > big_warm > small_warm
    for r in rows:
        assert r["total_ms"] == pytest.approx(r["network_ms"] + r["device_ms"])


def test_describe_lowend_3g_numbers() -> None:
    """A worked example: low-end 3G (400 ms, 400/400 kbit/s, CPU 6x), 10 KB warm."""
    rows = netmodel.describe(PROFILES["android-lowend-3g"])
    warm = rows[1]
    expected_network = 400 + 400 * 8 / 400 + (10_240 + 250) * 8 / 400
    assert warm["network_ms"] == pytest.approx(expected_network)
    assert warm["device_ms"] == pytest.approx((2 + 0.05 * 10) * 6)


def test_schedule_reaches_the_predicted_download_time() -> None:
    """The emulator's pacing schedule ends exactly at predict()'s download time."""
    for p in PROFILES.values():
        n = p.network
        for size in (2_000, 204_800):
            t = predict(p, 400, size, new_connection=True)
            s = DownloadSchedule(n, netmodel.initial_cwnd_bytes(n))
            assert s.due_ms(size) == pytest.approx(t.download_ms)
            p_warm = replace(p, network=replace(n, initial_cwnd_segments=1000))
            assert predict(p_warm, 400, size, new_connection=True).slow_start_rounds == 0
