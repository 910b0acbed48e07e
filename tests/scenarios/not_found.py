"""Every request asks for a page the target does not have: a 100% error rate (404)."""

from locust import FastHttpUser, task


class Lost(FastHttpUser):
    @task
    def missing(self) -> None:
        self.client.get("/no-such-page")
