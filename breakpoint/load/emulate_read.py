"""Reading a response to the pacing schedule (the emulation's streamed path), or giving it up at
the client timeout (see emulate.py).

Every built-in profile has a finite bandwidth, so every request of theirs goes through here:
it is written for speed (docs/design.md#emulated-request; benchmarks/emulation.py measures it).
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

from breakpoint.load.emulate_parts import (
    EmulatedConnectionError,
    EmulatedTimeout,
    _Connection,
    _EventTap,
    _ghc_header,
    _head_bytes,
    _Overshoot,
    _perf,
    _sleep_until,
)
from breakpoint.plan import netmodel
from breakpoint.plan.profiles import Network, Profile


class PacedReads:
    """The body reads and the timeout of an emulated user (mixed into its emulator)."""

    # Set by the emulator (emulate._Emulator.__init__).
    client: Any
    profile: Profile
    network: Network
    rng: random.Random
    fast: bool
    paced: bool
    lossy: bool
    timeout_s: float
    timeouts: int
    chunk_bytes: int
    tap: _EventTap
    _schedules: dict[tuple[float, float], netmodel.DownloadSchedule]

    def _schedule(self, conn: _Connection, rtt_ms: float) -> netmodel.DownloadSchedule:
        """The pacing schedule for the connection's window and this round trip."""
        key = (conn.cwnd_bytes, rtt_ms)
        schedule = self._schedules.get(key)
        if schedule is None:
            if len(self._schedules) > 64:
                self._schedules.clear()
            schedule = self._schedules[key] = netmodel.DownloadSchedule(
                self.network, conn.cwnd_bytes, rtt_ms=rtt_ms
            )
        conn.schedule = schedule
        conn.memo = (-1, 0.0, 0.0)
        return schedule

    def _stalls(self, declared: Any, head_bytes: int, rtt_ms: float) -> list[tuple[float, float]]:
        """Lost packets drawn for a response of head_bytes + its declared content-length."""
        size = int(declared) if isinstance(declared, str) and declared.isdigit() else 0
        return netmodel.sample_losses(self.network, head_bytes + size, self.rng, rtt_ms=rtt_ms)

    def _receive_fast(
        self, response: Any, conn: _Connection, rtt_ms: float, t_first: float
    ) -> tuple[int, int, float, bool, float, Exception | None]:
        """FastHttpUser's body read to the pacing schedule.

        Returns (body bytes, wire bytes, network end, reusable, drawn loss delay, read error).
        t_first is the perf_counter time at which the response's first byte arrives in emulated
        time; the network end is when its last byte does.
        """
        raw = response._response
        if raw is None:  # no response at all: the connection failed
            return 0, 0, t_first, False, 0.0, None
        # Will the connection stay open (no "Connection: close")? Asked of the parser.
        reuse = raw.should_keep_alive()
        if not self.paced:
            # An unlimited link: the client read the body at full speed, and the head's size
            # would change nothing (it is not counted).
            size = len(response.content or b"")
            conn.idle_since = t_first
            return size, size, t_first, reuse, 0.0, None
        headers = response.headers
        wire = 19  # _ghc_head_bytes(headers), inline
        for line in dict.values(headers):
            if type(line) is tuple:
                wire += len(line[0]) + len(line[1]) + 4
            else:
                for field, value in line:
                    wire += len(field) + len(value) + 4
        schedule = conn.schedule
        if schedule is None or schedule.cwnd_bytes != conn.cwnd_bytes or schedule.rtt_ms != rtt_ms:
            schedule = self._schedule(conn, rtt_ms)
        stalls = None
        if self.lossy:
            stalls = self._stalls(_ghc_header(headers, "content-length"), wire, rtt_ms)
        stall_ms = 0.0
        error: Exception | None = None
        encoding = dict.get(headers, "content-encoding")  # _ghc_header, inline
        identity = encoding is None or (
            type(encoding) is tuple and encoding[1].lower() == "identity"
        )
        if raw.message_complete:
            # The whole body came with the headers (it fitted in the client's first read): there
            # is nothing to pace between reads, only its end below.
            buffer = raw._body_buffer
            size = len(buffer)
            if identity:
                response._cached_content = bytes(buffer)
                buffer.clear()
            # else: left in the buffer, for geventhttpclient to decode as .content would have
            wire += size
            if stalls:
                stall_ms = sum(d for at, d in stalls if at < wire)
        else:
            parts: list[bytes] = []
            chunk = self.chunk_bytes
            stall_at = 0
            try:
                while data := raw.read(chunk):
                    parts.append(data)
                    wire += len(data)
                    if stalls:
                        while stall_at < len(stalls) and stalls[stall_at][0] < wire:
                            stall_ms += stalls[stall_at][1]
                            stall_at += 1
                    if raw.message_complete and not raw._body_buffer:
                        break  # all read: the last step's sleep is taken with the device time
                    due = t_first + (schedule.due_ms(wire) + stall_ms) / 1000.0
                    if due - _perf() > _Overshoot.estimate_s:
                        _sleep_until(due)
            except Exception as exc:  # any failure to read is this request's error
                error = EmulatedConnectionError(f"reading the response failed: {exc!r}")
                reuse = False
            body = b"".join(parts)
            size = len(body)
            if identity:
                response._cached_content = body
            else:  # let geventhttpclient decode it, as .content would have
                raw._body_buffer.extend(body)
        memo = conn.memo
        if memo[0] != wire:
            memo = conn.memo = (wire, schedule.due_ms(wire), schedule.cwnd_after(wire))
        t_end = t_first + (memo[1] + stall_ms) / 1000.0
        conn.cwnd_bytes = memo[2]
        conn.idle_since = t_end
        if stalls:
            return size, wire, t_end, reuse, sum(d for _, d in stalls), error
        return size, wire, t_end, reuse, 0.0, error

    def _receive_streamed(
        self, response: Any, conn: _Connection, rtt_ms: float, t_first: float
    ) -> tuple[int, int, float, bool, float, Exception | None]:
        """HttpUser's body read to the pacing schedule (see _receive_fast for what it returns).

        Also FastHttpUser's, should geventhttpclient's headers ever not be readable as
        _ghc_head_bytes expects.
        """
        fast = self.fast
        raw = response._response if fast else response.raw
        if raw is None:  # no response at all: the connection failed
            return 0, 0, t_first, False, 0.0, None
        headers = response.headers
        if not fast and response.history:
            t_first += len(response.history) * rtt_ms / 1000.0  # each redirect hop: 1 RTT
        reuse = (
            raw.should_keep_alive()
            if fast
            else not getattr(raw._original_response, "will_close", False)
        )
        if not self.paced:
            size = len(response.content or b"")
            conn.idle_since = t_first
            return size, size, t_first, reuse, 0.0, None
        head_bytes = _head_bytes(headers)
        schedule = self._schedule(conn, rtt_ms)
        stalls = (
            self._stalls(headers.get("content-length"), head_bytes, rtt_ms) if self.lossy else []
        )
        stall_at = 0
        stall_ms = 0.0
        chunk = self.chunk_bytes
        parts: list[bytes] = []
        wire = head_bytes
        error: Exception | None = None
        try:
            while data := (raw.read(chunk) if fast else raw.read(chunk, decode_content=True)):
                parts.append(data)
                wire = wire + len(data) if fast else head_bytes + raw.tell()
                while stall_at < len(stalls) and stalls[stall_at][0] < wire:
                    stall_ms += stalls[stall_at][1]
                    stall_at += 1
                if fast and raw.message_complete and not raw._body_buffer:
                    break  # all read: the last step's sleep is taken with the device time
                due = t_first + (schedule.due_ms(wire) + stall_ms) / 1000.0
                if due - _perf() > _Overshoot.estimate_s:
                    _sleep_until(due)
        except Exception as exc:  # any failure to read is this request's error
            error = EmulatedConnectionError(f"reading the response failed: {exc!r}")
            reuse = False
        body = b"".join(parts)
        if fast:
            encoding = headers.get("content-encoding")
            if encoding is None or encoding.lower() == "identity":
                response._cached_content = body
            else:  # let geventhttpclient decode it, as .content would have
                raw._body_buffer.extend(body)
        else:
            response._content = body
            response._content_consumed = True
        t_end = t_first + (schedule.due_ms(wire) + stall_ms) / 1000.0
        conn.cwnd_bytes = schedule.cwnd_after(wire)
        conn.idle_since = t_end
        loss_ms = sum(d for _, d in stalls) if stalls else 0.0
        return len(body), wire, t_end, reuse, loss_ms, error

    def _timed_out(
        self,
        response: Any,
        meta: dict[str, Any] | None,
        method: str,
        url: str,
        name: str | None,
        merged: dict[str, Any],
        catch: bool,
        t0: float,
        wall0: float,
        t_send: float,
        t_head: float,
    ) -> Any:
        """Abort the real exchange and report the request as an EmulatedTimeout.

        Whatever the client made of the exchange (a response, its held report) is dropped: the
        emulated user gave up, so the result is a failed response with status 0, reported once.
        """
        self.timeouts += 1
        if response is not None:
            # Closing a connection that already broke may fail too: that changes nothing.
            with contextlib.suppress(Exception):
                if self.fast:
                    if response._response is not None:
                        response._response.release()
                else:
                    response.close()
        ctx = meta["context"] if meta is not None else merged
        name = (meta or {}).get("name") or name or self.client.request_name or url
        error = EmulatedTimeout(
            f"timed out after {self.timeout_s:g} s (profile {self.profile.name} timeout_s)"
        )
        total_ms = (_perf() - t0) * 1000.0
        server_ms = max(0.0, (t_head - t_send) * 1000.0)
        ctx["bp_emulated"] = True
        ctx["bp_network_ms"] = total_ms - server_ms
        ctx["bp_device_ms"] = 0.0
        failed_meta: dict[str, Any] = {
            "request_type": method,
            "name": name,
            "context": ctx,
            "exception": None,
            "start_time": wall0,
            "url": url,
            "response_time": total_ms,
            "response_length": 0,
        }
        event = self.tap.event
        out: Any
        if self.fast:
            from locust.contrib.fasthttp import ErrorResponse, ResponseContextManager

            request = self.client.client._make_request(self.client._build_url(url), method=method)
            failed = ErrorResponse(request, error)
            failed_meta["response"] = failed
            out = ResponseContextManager(failed, event, failed_meta, catch)
        else:
            from locust.clients import ResponseContextManager as HttpResponseContextManager

            failed_http = HttpResponseContextManager(error)
            failed_meta["response"] = failed_http
            out = HttpResponseContextManager.wrap_response(
                failed_http, request_event=event, request_meta=failed_meta, catch_response=catch
            )
        if not catch:
            failed_meta["exception"] = error
            event.fire(**failed_meta)
        return out
