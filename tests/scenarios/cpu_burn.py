"""A scenario that makes the load generator its own bottleneck: each iteration busy-loops.

Every iteration burns BURN_MS of CPU in a plain Python loop (holding the GIL and never yielding
to gevent) before one GET /api/page. At an arrival rate above 1000 / BURN_MS per second a
generator process needs more than one core, so it falls behind its schedule whatever the target
does: the step must be flagged generator-bound (tests/test_measurement_e2e.py).
"""

import time

from locust import FastHttpUser, constant, task

BURN_MS = 20.0


def burn(ms: float) -> None:
    """Keep the CPU busy for `ms` milliseconds without yielding."""
    until = time.perf_counter() + ms / 1000.0
    while time.perf_counter() < until:
        pass


class Burner(FastHttpUser):
    wait_time = constant(1)

    @task
    def work_then_page(self) -> None:
        burn(BURN_MS)
        self.client.get("/api/page", name="/api/page")
