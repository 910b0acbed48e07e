"""The host allow-list: only the target (and hosts allowed explicitly) can be requested."""

from __future__ import annotations

import pytest

from breakpoint.load.guard import BlockedHostError, HostGuard


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
