"""Network namespaces joined by veth pairs to a bridge, for tests and benchmarks that need real
separate network stacks on one machine (root only). Everything lives inside namespaces this
module creates, named with a random suffix, so deleting them removes every link; `Lab` deletes
them whatever happens. Load goes only to addresses of these namespaces.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

SUBNET = "10.231.0"


def why_not_available() -> str | None:
    """None when this process may create namespaces; otherwise the reason (for pytest.skip)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"bp-probe-{secrets.token_hex(3)}"
    made = subprocess.run(
        ["ip", "netns", "add", probe], check=False, capture_output=True, text=True
    )
    if made.returncode != 0:
        return f"`ip netns add` is not allowed here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=False, capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Lab:
    """Namespaces on one bridge: `address[name]` is each namespace's address on it."""

    names: Sequence[str]
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    address: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    def ns(self, name: str) -> str:
        return f"bp-{name}-{self.tag}"

    def build(self) -> None:
        switch = self.ns("sw")
        _ip("netns", "add", switch)
        self.created.append(switch)
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        for k, name in enumerate(self.names, start=1):
            ns = self.ns(name)
            _ip("netns", "add", ns)
            self.created.append(ns)
            port = f"v{k}"
            _ip("-n", switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                "netns", ns)  # fmt: skip
            _ip("-n", switch, "link", "set", port, "master", "br0", "up")
            address = f"{SUBNET}.{k}"
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            self.address[name] = address

    def destroy(self) -> None:
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        self.created.clear()

    def argv(self, name: str, argv: Sequence[str], *, cpus: str | None = None) -> list[str]:
        """A command run inside namespace `name` (pinned to `cpus`, e.g. "0", if given)."""
        pinned = ["taskset", "-c", cpus] if cpus is not None else []
        return ["ip", "netns", "exec", self.ns(name), *pinned, *argv]


@contextmanager
def lab(*names: str) -> Iterator[Lab]:
    """Namespaces `names` on one bridge, deleted on exit whatever happened."""
    built = Lab(names)
    try:
        built.build()
        yield built
    finally:
        built.destroy()
