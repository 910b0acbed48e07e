"""A scenario whose users raise in every task (a typo in the scenario, not the target's fault)."""

from locust import HttpUser, task


class Crasher(HttpUser):
    @task
    def page(self):
        response = self.client.get("/api/page")
        response.shop_id  # noqa: B018 - the scenario's bug: responses have no shop_id (line 10)
