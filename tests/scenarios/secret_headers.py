"""Sends credentials taken from the environment: a bearer token, a session cookie, an API key."""

import os

from locust import FastHttpUser, task

TOKEN = os.environ.get("BP_TEST_TOKEN", "token")
SESSION = os.environ.get("BP_TEST_SESSION", "session")
API_KEY = os.environ.get("BP_TEST_API_KEY", "key")
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Cookie": f"sid={SESSION}"}


class Member(FastHttpUser):
    @task(4)
    def page(self) -> None:
        self.client.get("/api/page", headers=HEADERS)

    @task(2)
    def search(self) -> None:
        # No name=: Locust names the request after its URL, query string included.
        self.client.get(f"/api/search?q=shoes&api_key={API_KEY}", headers=HEADERS)

    @task(1)
    def missing(self) -> None:
        # A failing request too: error messages must not carry the credentials either.
        self.client.get(f"/no-such-page?api_key={API_KEY}", headers=HEADERS)
