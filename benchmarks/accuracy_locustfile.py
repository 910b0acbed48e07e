"""The accuracy benchmark's locustfile for its 3G and gunicorn cases (benchmarks/accuracy.py).

One request per iteration, GET BP_ACCURACY_PATH (default /static/asset.bin, the embedded
target's 200 KB asset; the gunicorn case sets /work). Segments named in BP_ACCURACY_CLOSE
(comma-separated profile names) send `Connection: close`, so each of their requests opens a new
connection: the emulated network time is then one known constant (netmodel.predict on a new
connection: a set-up round trip and a slow-start round from the initial window), where a
kept-alive connection would be warm or restarted from the initial window depending on how long
the user happened to be idle. The other segments keep their connections alive.

Use it with the open model (`--baseline-rps`); `constant(0)` is only what plain `locust -f`
would do.
"""

import os

from locust import FastHttpUser, constant, task

PATH = os.environ.get("BP_ACCURACY_PATH", "/static/asset.bin")
CLOSE_SEGMENTS = frozenset(s for s in os.environ.get("BP_ACCURACY_CLOSE", "").split(",") if s)


class OnePath(FastHttpUser):
    wait_time = constant(0)

    @task
    def fetch(self) -> None:
        # breakpoint sets bp_segment on the class it derives per segment (breakpoint/users.py).
        if getattr(self, "bp_segment", None) in CLOSE_SEGMENTS:
            self.client.get(PATH, name=PATH, headers={"Connection": "close"})
        else:
            self.client.get(PATH, name=PATH)
