"""The bundled shop without its 200 KB asset: pages and searches only.

For the objectives e2e (tests/test_objectives_e2e.py): the break is on the API's objectives, and
without the 3G segment's 5 s downloads the steps stay a few seconds long.
"""

import random

from locust import FastHttpUser, between, task

QUERIES = ("shoes", "red jacket", "phone case", "coffee", "tent", "gift card")


class ApiShopper(FastHttpUser):
    wait_time = between(1, 3)

    @task(6)
    def browse(self) -> None:
        self.client.get("/api/page", name="/api/page")

    @task(3)
    def search(self) -> None:
        self.client.get(f"/api/search?q={random.choice(QUERIES)}", name="/api/search")
