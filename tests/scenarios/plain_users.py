"""Locust's documented patterns that are not HttpUser: a `User` measuring itself through
events.request with its own client, and a `User` whose tasks live in a MarkovTaskSet; plus a
task-less base class (not abstract), a class that must not be picked, a scenario option, and a
LoadTestShape. Both picked classes set `host` (BP_TEST_HOST)."""

import http.client
import os
import time
from collections import Counter
from urllib.parse import urlsplit

from locust import HttpUser, LoadTestShape, MarkovTaskSet, User, between, events, task, transition
from locust.clients import HttpSession

HOST = os.environ.get("BP_TEST_HOST", "http://127.0.0.1:9")
SEEN = os.environ.get("BP_TEST_SEEN", os.devnull)
OTHER = os.environ.get("BP_TEST_OTHER_HOST", "http://127.0.0.2:9")
FIRED: Counter = Counter()  # request events fired, by kind (read by the test)


@events.init_command_line_parser.add_listener
def _(parser):
    parser.add_argument("--shop-id", type=int, default=0, help="the shop to browse")


class PlainClient:
    """A client that is not an HttpSession: it talks HTTP through http.client and reports each
    call as Locust's documentation teaches for other protocols."""

    def __init__(self, host, request_event):
        parts = urlsplit(host)
        self.address = (parts.hostname, parts.port)
        self.request_event = request_event

    def call(self, kind, path):
        start = time.perf_counter()
        exception, length = None, 0
        try:
            conn = http.client.HTTPConnection(*self.address, timeout=10)
            conn.request("GET", path)
            response = conn.getresponse()
            length = len(response.read())
            conn.close()
            if response.status >= 400:
                exception = RuntimeError(f"HTTP {response.status}")
        except OSError as exc:
            exception = exc
        FIRED[kind] += 1
        self.request_event.fire(
            request_type="plain",
            name=kind,
            response_time=(time.perf_counter() - start) * 1000,
            response_length=length,
            exception=exception,
            context={},
        )


class Base(User):
    """Shared set-up, no tasks, not marked abstract."""

    host = HOST

    def __init__(self, environment):
        super().__init__(environment)
        self.client = PlainClient(self.host, environment.events.request)

    def on_start(self):
        with open(SEEN, "a") as out:
            name = type(self).__name__.split("@")[0]
            out.write(f"{name} shop={self.environment.parsed_options.shop_id}\n")


class RpcUser(Base):
    wait_time = between(0.05, 0.1)

    @task
    def page(self):
        self.client.call("rpc", "/api/page")


class Browse(MarkovTaskSet):
    @transition("detail")
    def listing(self):
        self.user.client.call("markov", "/api/page")

    @transition("listing")
    def detail(self):
        self.user.client.call("markov", "/api/page")


class MarkovUser(Base):
    wait_time = between(0.05, 0.1)
    tasks = [Browse]  # noqa: RUF012 - as Locust's documentation writes it


class TwoHosts(HttpUser):
    """Locust's multiple-hosts pattern: a second HttpSession to another host."""

    host = HOST
    wait_time = between(0.05, 0.1)

    def on_start(self):
        self.other = HttpSession(base_url=OTHER, request_event=self.client.request_event, user=self)

    @task(3)
    def page(self):
        self.client.get("/api/page")

    @task
    def elsewhere(self):
        self.other.get("/api/other")


class NotThisOne(HttpUser):
    host = HOST

    @task
    def broken(self):
        raise RuntimeError("this class was not picked and must not run")


class Ramp(LoadTestShape):
    def tick(self):
        return None
