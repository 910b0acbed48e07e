"""Every iteration is one request to the embedded target's /api/page (mean service time S)."""

from locust import FastHttpUser, task


class PageReader(FastHttpUser):
    @task
    def page(self) -> None:
        self.client.get("/api/page", name="/api/page")
