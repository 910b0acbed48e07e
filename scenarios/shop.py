"""A small shop: browse pages, search, fetch the big static asset.

A plain Locust locustfile: it runs unchanged under `locust -f scenarios/shop.py` and under
`breakpoint run scenarios/shop.py`, which wraps its user class once per device/network profile.
"""

import random

from locust import FastHttpUser, between, task

QUERIES = ("shoes", "red jacket", "phone case", "coffee", "tent", "gift card")


class Shopper(FastHttpUser):
    wait_time = between(1, 3)

    @task(6)
    def browse(self) -> None:
        self.client.get("/api/page", name="/api/page")

    @task(3)
    def search(self) -> None:
        self.client.get(f"/api/search?q={random.choice(QUERIES)}", name="/api/search")

    @task(1)
    def asset(self) -> None:
        self.client.get("/static/asset.bin", name="/static/asset.bin")
