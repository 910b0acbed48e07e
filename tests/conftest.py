"""Shared fixtures: a demo target on 127.0.0.1 and small builders of measured data."""

from __future__ import annotations

from collections.abc import Iterator

# Locust monkey-patches the standard library with gevent when imported. Patching a process that
# already runs threads (the target's output reader, for one) can deadlock, so it happens first.
import locust  # noqa: F401  (imported before any thread exists, for its side effect)
import pytest

from breakpoint.demo.target import TargetConfig, TargetProcess, start_target_process


@pytest.fixture(scope="session")
def demo_target() -> Iterator[TargetProcess]:
    """The embedded target (8 workers, 20 ms) in a child process, shared by e2e tests."""
    with start_target_process(TargetConfig(workers=8, service_ms=20.0, seed=1)) as target:
        yield target


@pytest.fixture
def own_target() -> Iterator[TargetProcess]:
    """A target of the test's own (8 workers x 10 ms), which the test may kill or stall."""
    target = start_target_process(TargetConfig(workers=8, service_ms=10.0, seed=7))
    try:
        yield target
    finally:
        target.stop()
