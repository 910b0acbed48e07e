"""Ground truth: GET /api/page only, so every measured latency is one M/M/c sojourn.

A plain Locust locustfile for the acceptance test and the accuracy benchmark
(docs/design.md#ground-truths). /api/page is the embedded target's endpoint whose mean service
time is exactly S (cost factor
1), so with Poisson arrivals the target is an M/M/c queue and its breaking point follows from
Erlang C (breakpoint.sim.queueing.break_rate).

Use it with the open model (`--baseline-rps`): breakpoint replaces the wait with scheduled
arrivals, so `constant(0)` is only what plain `locust -f` would do (no think time at all).
"""

from locust import FastHttpUser, constant, task


class PageOnly(FastHttpUser):
    wait_time = constant(0)

    @task
    def page(self) -> None:
        self.client.get("/api/page", name="/api/page")
