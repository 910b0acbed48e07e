"""Calls the target and, besides it, a third-party host (BP_TEST_FOREIGN_URL) it must not load."""

import os

from locust import FastHttpUser, task

FOREIGN_URL = os.environ.get("BP_TEST_FOREIGN_URL", "http://127.0.0.2:9/")


class Visitor(FastHttpUser):
    @task(3)
    def page(self) -> None:
        self.client.get("/api/page")

    @task(1)
    def beacon(self) -> None:
        self.client.get(FOREIGN_URL, name="beacon")
