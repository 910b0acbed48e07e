"""The host allow-list: only the target (and hosts allowed explicitly) can be requested."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from breakpoint.load.guard import BlockedHostError, HostGuard, guarding_sessions
from breakpoint.load.users import measured_requests

_ORIGINAL_SEND = requests.Session.send


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        pytest.param("/api/page", True, id="relative"),
        pytest.param("http://127.0.0.1:8089/api/page", True, id="target"),
        pytest.param("http://127.0.0.1:9999/x", False, id="same-host-other-port"),
        pytest.param("https://api.stripe.com/v1/charges", False, id="third-party"),
        pytest.param("http://cdn.example.org/app.js", True, id="allowed-any-port"),
        pytest.param("http://LOCALHOST:8089/", False, id="other-name-for-loopback"),
    ],
)
def test_allow_list(url: str, allowed: bool) -> None:
    """Requests go only to the target's host:port or to hosts allowed explicitly."""
    guard = HostGuard("http://127.0.0.1:8089", allowed=["cdn.example.org"])
    assert guard.allows(url) is allowed


def test_blocked_requests_are_counted_and_never_sent() -> None:
    """A blocked request raises before the client is called, and is counted by host."""
    sent: list[str] = []

    class Client:
        def request(self, method: str, url: str, **_: object) -> str:
            sent.append(url)
            return "ok"

    class User:
        client = Client()

    user = User()
    guard = HostGuard("http://127.0.0.1:8089")
    guard.install(user)
    assert user.client.request("GET", "/api/page") == "ok"
    for _ in range(3):
        with pytest.raises(BlockedHostError, match=r"api\.stripe\.com"):
            user.client.request("POST", "https://api.stripe.com/v1/charges")
    assert sent == ["/api/page"]
    assert guard.blocked == {"api.stripe.com": 3}


# -- every way a scenario sends HTTP (real sockets on loopback, no load) ------------------------
@contextlib.contextmanager
def _listener(host: str) -> Iterator[tuple[str, Callable[[], int]]]:
    """A TCP listener on `host`; yields its URL and a function counting connections made."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        sock.listen(16)
        sock.setblocking(False)

        def connections() -> int:
            n = 0
            with contextlib.suppress(BlockingIOError):
                while True:
                    sock.accept()[0].close()
                    n += 1
            return n

        yield f"http://{host}:{sock.getsockname()[1]}", connections


@pytest.fixture
def redirecting() -> Iterator[tuple[str, str, Callable[[], int]]]:
    """A 'target' on 127.0.0.1 whose /go redirects to a listener on 127.0.0.2."""
    from gevent.pywsgi import WSGIServer

    with _listener("127.0.0.2") as (foreign, connections):

        def app(environ: dict[str, object], start: Callable[..., object]) -> list[bytes]:
            if environ["PATH_INFO"] == "/go":
                start("302 Found", [("Location", f"{foreign}/landing"), ("Content-Length", "0")])
                return [b""]
            start("200 OK", [("Content-Length", "2")])
            return [b"ok"]

        server = WSGIServer(("127.0.0.1", 0), app, log=None)
        server.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", foreign, connections
        finally:
            server.stop()


def _host_of(url: str) -> str:
    return url.split("://", 1)[1]


def test_a_second_http_session_to_another_host_is_blocked_before_connecting() -> None:
    """Locust's multiple-hosts pattern: a session the scenario opens itself is guarded too."""
    from locust.clients import HttpSession
    from locust.event import Events

    with _listener("127.0.0.2") as (foreign, connections):
        guard = HostGuard("http://127.0.0.1:9")
        session = HttpSession(base_url=foreign, request_event=Events().request, user=None)
        with guarding_sessions(guard), pytest.raises(BlockedHostError):
            session.get("/api/other")
        assert guard.blocked == {_host_of(foreign): 1}
        assert connections() == 0


@pytest.mark.parametrize("fast", [False, True], ids=["HttpSession", "FastHttpSession"])
def test_a_redirect_to_another_host_is_blocked(
    redirecting: tuple[str, str, Callable[[], int]], fast: bool
) -> None:
    """The target answers 302 to a foreign host: the hop is blocked, counted, never sent."""
    from locust.clients import HttpSession
    from locust.contrib.fasthttp import FastHttpSession
    from locust.env import Environment

    target, foreign, connections = redirecting
    guard = HostGuard(target)
    env = Environment()
    session: Any = (
        FastHttpSession(base_url=target, request_event=env.events.request, user=None)
        if fast
        else HttpSession(base_url=target, request_event=env.events.request, user=None)
    )
    with guarding_sessions(guard):
        assert session.get("/ok").status_code == 200
        with pytest.raises(BlockedHostError):
            session.get("/go")
    assert guard.blocked == {_host_of(foreign): 1}
    assert connections() == 0


def test_requests_used_directly_is_blocked_but_urllib_is_not() -> None:
    """`requests.get` goes through requests.Session.send and is guarded; urllib (like http.client,
    raw sockets, gRPC or database drivers) cannot be intercepted: the documented limit."""
    import urllib.request

    import requests

    with _listener("127.0.0.2") as (foreign, connections):
        guard = HostGuard("http://127.0.0.1:9")
        with guarding_sessions(guard):
            with pytest.raises(BlockedHostError):
                requests.get(f"{foreign}/direct", timeout=2)
            assert connections() == 0
            with pytest.raises(OSError):  # the listener never answers: the request is cut off
                urllib.request.urlopen(f"{foreign}/direct", timeout=0.5)
            assert connections() == 1  # urllib reached the foreign host: not guarded
        assert guard.blocked == {_host_of(foreign): 1}
    # Outside a run nothing stays patched.
    assert requests.Session.send is _ORIGINAL_SEND


def test_a_custom_clients_request_to_another_host_is_counted_and_not_measured() -> None:
    """A custom client reports a request it already sent to another host: counted as reached,
    kept out of the measurements; the target's own requests are measured."""
    measured: list[str] = []
    guard = HostGuard("http://127.0.0.1:8089")
    listener = measured_requests(lambda **kw: measured.append(kw["name"]), guard)
    listener(name="own", url="http://127.0.0.1:8089/x", context={"bp_segment": "s"})
    listener(name="rpc", context={"bp_segment": "s"})  # no URL: a protocol that has none
    listener(name="beacon", url="https://collector.example.org/b", context={"bp_segment": "s"})
    assert measured == ["own", "rpc"]
    assert guard.reached == {"collector.example.org": 1}
    assert guard.blocked == {}
