"""The timing model of an emulated user's network and device (pure: no locust, no I/O).

Given a profile (its `Network` and `Device`), the size of a request and of its response, and
whether the connection is new, `predict` says how long the user waits and what that time is made
of. The emulator (`emulate.py`) executes the same equations request by request, so what Locust
measures is this model plus the server's own time; tests hold the two within a few percent.

The model, per request (RTT in ms, bandwidths in kbit/s, sizes in bytes; 1 kbit/s moves
1 bit/ms, so bytes x 8 / kbps is milliseconds):

- Set-up: a new connection costs 1 RTT (TCP handshake), plus 1 RTT for TLS (TLS 1.3, or 1.2
  with session resumption). A kept-alive connection costs nothing.
- Request: 1 RTT (half for the request to reach the server, half for the first byte back),
  plus the upload time of request line, headers and body: request_bytes x 8 / up_kbps.
  Uploads are not slow-started (requests are small; a multi-megabyte upload would be optimistic).
- Download: at down_kbps, but a connection's congestion window limits how much may be in flight.
  It starts at initial_cwnd_segments x 1460 bytes (IW10 = 14.6 KB) and doubles every round trip
  (slow start) until it reaches the bandwidth-delay product BDP = down_kbps / 8 x RTT bytes.
  While the window w is below the BDP, a round trip delivers only w bytes and then waits for
  ACKs: round i starts at i x RTT. A cold 200 KB response on a 150 ms / 1.6 Mbit/s link (BDP
  30 KB) needs two such rounds: 14.6 KB, 29.2 KB, then the rest at line rate. The window a
  connection ends with is carried to its next request (`Timing.cwnd_after_bytes`), and falls
  back to the initial window after an idle period longer than one retransmission timeout
  (RFC 2861 slow-start restart; Linux's default tcp_slow_start_after_idle=1), RTO = RTT + 200 ms.
- Loss (loss_pct = p per packet, each direction): modelled as the expected retransmission delay,
  first order in p (a packet is lost at most once; at p = 2% a second loss of the same packet
  has probability 0.04%). A lost SYN or SYN-ACK waits the initial RTO of 1 s (RFC 6298). A lost
  data packet with at least 3 packets after it in the same transfer is repaired by fast
  retransmit, 1 RTT late; a lost tail packet (one of the last 3, including every packet of a
  short transfer and the 5 packets of a TLS handshake) waits for the tail-loss probe, 2 RTT.
  Expected delay = p x sum of those penalties over the packets of the exchange (1460-byte
  packets). The congestion window's halving after a loss is ignored: exact when the halved
  window still covers the BDP (2g-rural: BDP 3.2 KB vs 7.3 KB), optimistic otherwise.
- Jitter (jitter_ms = j): each round trip lasts max(0, RTT + U(-j, +j)) (netem's uniform jitter);
  the model uses its mean, which is RTT when j <= RTT and (RTT + j)^2 / 4j otherwise. The
  emulator draws it with the user's seeded random generator.
- Device: (base_ms + ms_per_kb x KB) x cpu_slowdown, KB being the response body in KiB, plus any
  cost the scenario declares per endpoint (in milliseconds on a 1x device, also scaled).

Total experienced time = set-up + request RTT + upload + download + loss + server + device;
`predict` returns every part except the server's.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from breakpoint.plan.profiles import Device, Network, Profile

MSS_BYTES = 1460
# A browser's request line and headers without cookies; emulate.py adds the URL and body.
REQUEST_HEAD_BYTES = 400
# Status line and headers of a typical API response (describe() only; the emulator counts them).
RESPONSE_HEAD_BYTES = 250
TCP_HANDSHAKE_RTTS = 1
TLS_HANDSHAKE_RTTS = 1
# ClientHello, the server's flight (hello, certificate: about 3 packets), the client's Finished.
TLS_HANDSHAKE_PACKETS = 5
SYN_RTO_MS = 1000.0  # RFC 6298 initial retransmission timeout
MIN_RTO_MS = 200.0  # Linux TCP_RTO_MIN: with a steady RTT, RTO = RTT + 200 ms
FAST_RETRANSMIT_RTTS = 1.0
TAIL_LOSS_RTTS = 2.0  # tail-loss probe after 2 x SRTT
DUPACK_THRESHOLD = 3  # a loss needs this many later packets to be repaired by fast retransmit


@dataclass(frozen=True)
class Timing:
    """One request's predicted experienced time, in parts (ms); the server's time is not in it."""

    setup_ms: float
    request_ms: float
    upload_ms: float
    download_ms: float
    slow_start_ms: float  # the part of download_ms spent waiting for ACKs on a small window
    slow_start_rounds: int
    loss_ms: float
    device_ms: float
    cwnd_after_bytes: float

    @property
    def network_ms(self) -> float:
        return self.setup_ms + self.request_ms + self.upload_ms + self.download_ms + self.loss_ms

    @property
    def total_ms(self) -> float:
        return self.network_ms + self.device_ms


def transfer_ms(n_bytes: float, kbps: float) -> float:
    """Time to put n_bytes on a link of kbps (0 on an unlimited link)."""
    if not math.isfinite(kbps):
        return 0.0
    return n_bytes * 8.0 / kbps


def setup_rtts(*, new_connection: bool, tls: bool) -> int:
    """Round trips spent opening a connection before the request can be sent."""
    if not new_connection:
        return 0
    return TCP_HANDSHAKE_RTTS + (TLS_HANDSHAKE_RTTS if tls else 0)


def packets(n_bytes: float) -> int:
    return max(1, math.ceil(n_bytes / MSS_BYTES)) if n_bytes > 0 else 0


def initial_cwnd_bytes(network: Network) -> float:
    return float(network.initial_cwnd_segments * MSS_BYTES)


def bdp_bytes(network: Network, rtt_ms: float | None = None) -> float:
    """Bandwidth-delay product of the download direction: what fills the pipe."""
    rtt = expected_rtt_ms(network) if rtt_ms is None else rtt_ms
    if not math.isfinite(network.down_kbps):
        return math.inf
    return network.down_kbps / 8.0 * rtt


def rto_ms(network: Network) -> float:
    """Retransmission timeout of an established connection with a steady RTT (Linux)."""
    return expected_rtt_ms(network) + MIN_RTO_MS


def cwnd_after_idle(network: Network, cwnd_bytes: float, idle_ms: float) -> float:
    """A window idle for longer than an RTO restarts from the initial window (RFC 2861)."""
    if idle_ms > rto_ms(network):
        return initial_cwnd_bytes(network)
    return cwnd_bytes


def expected_rtt_ms(network: Network) -> float:
    """Mean round trip under uniform jitter floored at zero."""
    rtt, j = network.rtt_ms, network.jitter_ms
    if j <= rtt:
        return rtt
    return (rtt + j) ** 2 / (4.0 * j)


def sample_rtt_ms(network: Network, rng: random.Random) -> float:
    """One round trip's duration, jitter drawn from rng."""
    if network.jitter_ms <= 0:
        return network.rtt_ms
    return max(0.0, network.rtt_ms + rng.uniform(-network.jitter_ms, network.jitter_ms))


class DownloadSchedule:
    """When the n-th byte of a response arrives, counted from the arrival of its first byte.

    This is the emulator's pacing schedule: a token bucket filling at down_kbps from empty,
    where in slow start the bucket is also closed between a round's window and the next round
    trip. Rounds are precomputed once per response (at most about log2(BDP / IW) of them).
    """

    __slots__ = ("_bytes_per_ms", "_round_bytes", "_round_ms", "cwnd_bytes", "rtt_ms")

    def __init__(self, network: Network, cwnd_bytes: float, *, rtt_ms: float | None = None):
        rtt = expected_rtt_ms(network) if rtt_ms is None else rtt_ms
        self.rtt_ms = rtt
        self.cwnd_bytes = cwnd_bytes
        kbps = network.down_kbps
        self._bytes_per_ms = kbps / 8.0 if math.isfinite(kbps) else math.inf
        bdp = bdp_bytes(network, rtt)
        # Window-limited rounds: (first byte offset, start time); the last entry opens the
        # bandwidth-limited phase, which lasts for the rest of the response.
        starts: list[float] = [0.0]
        times: list[float] = [0.0]
        w = max(cwnd_bytes, 1.0)
        # 64 rounds double IW10 beyond any bandwidth; the bound only guards rtt_ms == 0.
        while w < bdp and rtt > 0 and len(starts) < 64:
            starts.append(starts[-1] + w)
            times.append(times[-1] + rtt)
            w *= 2.0
        self._round_bytes = starts
        self._round_ms = times

    def due_ms(self, n_bytes: float) -> float:
        """Milliseconds after the first byte's arrival at which n_bytes have all arrived."""
        starts = self._round_bytes
        i = len(starts) - 1
        # Byte n belongs to the round whose range holds byte index n - 1.
        while i > 0 and starts[i] >= n_bytes:
            i -= 1
        rate = self._bytes_per_ms
        within = (n_bytes - starts[i]) / rate if rate != math.inf else 0.0
        return self._round_ms[i] + within

    def waiting_rounds(self, n_bytes: float) -> int:
        """Round trips spent waiting for ACKs while delivering n_bytes."""
        starts = self._round_bytes
        i = len(starts) - 1
        while i > 0 and starts[i] >= n_bytes:
            i -= 1
        return i

    def cwnd_after(self, n_bytes: float) -> float:
        """The window after delivering n_bytes: slow start grows it by every acknowledged byte.

        Capped at twice the BDP, beyond which a larger window changes nothing.
        """
        grown = self.cwnd_bytes + n_bytes
        cap = 2.0 * self._bytes_per_ms * self.rtt_ms
        return min(grown, max(cap, self.cwnd_bytes))


def loss_penalty_ms(index: int, n_packets: int, rtt_ms: float) -> float:
    """Delay added by losing packet `index` of a transfer of n_packets (see module docstring)."""
    follows = n_packets - 1 - index
    rtts = FAST_RETRANSMIT_RTTS if follows >= DUPACK_THRESHOLD else TAIL_LOSS_RTTS
    return rtts * rtt_ms


def _transfer_penalty_sum_ms(n_packets: int, rtt_ms: float) -> float:
    tail = min(n_packets, DUPACK_THRESHOLD)
    return (n_packets - tail) * FAST_RETRANSMIT_RTTS * rtt_ms + tail * TAIL_LOSS_RTTS * rtt_ms


def expected_loss_ms(
    network: Network,
    request_bytes: float,
    response_bytes: float,
    *,
    new_connection: bool,
    tls: bool = False,
) -> float:
    """Expected retransmission delay of one exchange at the profile's packet loss rate."""
    p = network.loss_pct / 100.0
    if p <= 0:
        return 0.0
    rtt = expected_rtt_ms(network)
    penalties = _transfer_penalty_sum_ms(packets(request_bytes), rtt)
    penalties += _transfer_penalty_sum_ms(packets(response_bytes), rtt)
    if new_connection:
        penalties += 2 * SYN_RTO_MS  # SYN or SYN-ACK
        if tls:
            penalties += TLS_HANDSHAKE_PACKETS * TAIL_LOSS_RTTS * rtt
    return p * penalties


def sample_handshake_loss_ms(
    network: Network, rng: random.Random, *, tls: bool, rtt_ms: float | None = None
) -> float:
    """Retransmission delay drawn for one connection set-up."""
    p = network.loss_pct / 100.0
    if p <= 0:
        return 0.0
    rtt = network.rtt_ms if rtt_ms is None else rtt_ms
    delay = sum(SYN_RTO_MS for _ in range(2) if rng.random() < p)
    if tls:
        delay += sum(TAIL_LOSS_RTTS * rtt for _ in range(TLS_HANDSHAKE_PACKETS) if rng.random() < p)
    return delay


def sample_losses(
    network: Network, n_bytes: float, rng: random.Random, *, rtt_ms: float | None = None
) -> list[tuple[float, float]]:
    """Lost packets of one transfer drawn from rng: (byte offset where it stalls, delay ms).

    The offset is the first byte of the lost packet: delivery of everything from there on is
    late by the delay, which is how a reader pacing the download feels it.
    """
    p = network.loss_pct / 100.0
    if p <= 0 or n_bytes <= 0:
        return []
    rtt = network.rtt_ms if rtt_ms is None else rtt_ms
    n = packets(n_bytes)
    return [
        (float(i * MSS_BYTES), loss_penalty_ms(i, n, rtt)) for i in range(n) if rng.random() < p
    ]


def device_ms(device: Device, response_bytes: float, *, extra_ms: float = 0.0) -> float:
    """Processing time on the device: (base + per-KB + scenario's own cost) x CPU slowdown."""
    return (device.base_ms + device.ms_per_kb * response_bytes / 1024.0 + extra_ms) * (
        device.cpu_slowdown
    )


def predict(
    profile: Profile,
    request_bytes: float,
    response_bytes: float,
    *,
    new_connection: bool,
    tls: bool = False,
    cwnd_bytes: float | None = None,
    body_bytes: float | None = None,
    device_extra_ms: float = 0.0,
) -> Timing:
    """Predicted experienced time of one request, server time excluded.

    request_bytes and response_bytes are what crosses the link (head and body). cwnd_bytes is
    the connection's congestion window; by default the initial window on a new connection and a
    window that already covers the BDP on a kept-alive one. body_bytes (default: response_bytes)
    is what the device processes.
    """
    network = profile.network
    rtt = expected_rtt_ms(network)
    if cwnd_bytes is None:
        cwnd_bytes = initial_cwnd_bytes(network) if new_connection else math.inf
    schedule = DownloadSchedule(network, cwnd_bytes, rtt_ms=rtt)
    download = schedule.due_ms(response_bytes)
    line_rate = transfer_ms(response_bytes, network.down_kbps)
    return Timing(
        setup_ms=setup_rtts(new_connection=new_connection, tls=tls) * rtt,
        request_ms=rtt,
        upload_ms=transfer_ms(request_bytes, network.up_kbps),
        download_ms=download,
        slow_start_ms=max(0.0, download - line_rate),
        slow_start_rounds=schedule.waiting_rounds(response_bytes),
        loss_ms=expected_loss_ms(
            network, request_bytes, response_bytes, new_connection=new_connection, tls=tls
        ),
        device_ms=device_ms(
            profile.device,
            response_bytes if body_bytes is None else body_bytes,
            extra_ms=device_extra_ms,
        ),
        cwnd_after_bytes=schedule.cwnd_after(response_bytes),
    )


DESCRIBE_SIZES: tuple[tuple[str, int], ...] = (("10 KB", 10 * 1024), ("200 KB", 200 * 1024))


def describe(profile: Profile) -> list[dict[str, Any]]:
    """Predicted times of a 10 KB and a 200 KB response, cold and warm (plain HTTP).

    One row per case, with every part in ms, for `breakpoint profiles show NAME`.
    """
    rows: list[dict[str, Any]] = []
    for label, body in DESCRIBE_SIZES:
        for cold in (True, False):
            t = predict(
                profile,
                REQUEST_HEAD_BYTES,
                body + RESPONSE_HEAD_BYTES,
                new_connection=cold,
                body_bytes=body,
            )
            rows.append(
                {
                    "response": label,
                    "response_bytes": body,
                    "connection": "cold" if cold else "warm",
                    "setup_ms": t.setup_ms,
                    "request_ms": t.request_ms,
                    "upload_ms": t.upload_ms,
                    "download_ms": t.download_ms,
                    "slow_start_rounds": t.slow_start_rounds,
                    "slow_start_ms": t.slow_start_ms,
                    "loss_ms": t.loss_ms,
                    "network_ms": t.network_ms,
                    "device_ms": t.device_ms,
                    "total_ms": t.total_ms,
                }
            )
    return rows
