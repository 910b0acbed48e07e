"""gunicorn configuration for the accuracy benchmark's gunicorn case (`gunicorn -c` this file).

- post_fork: every worker learns its index (gunicorn's `age`: 1, 2, ... in spawn order) before
  it imports the app, which seeds its own random sequence with it (benchmarks/sleepy_wsgi.py).
- TimedSyncWorker (`-k sleepy_gunicorn.TimedSyncWorker`, with benchmarks/ on PYTHONPATH):
  gunicorn's own sync worker, unchanged, that also writes how long each connection held it to
  BP_SLEEPY_HELD_LOG. The access log's %(D)s starts after the request is parsed and stops
  before the access log line is written and the connection closed; since gunicorn 24 the close
  lingers until the client's FIN arrives (util.close_graceful), so under load a sync worker is
  held a millisecond or two longer than %(D)s says, and the queue feels that. The timed span is
  SyncWorker.handle: from the accepted connection to its close, which is the whole time a sync
  worker cannot take the next connection (only the accept call and a heartbeat are outside).

Everything else (workers, bind, backlog, access log) is given on the command line.
"""

from __future__ import annotations

import os
import time
from typing import Any

from gunicorn.workers.sync import SyncWorker


def post_fork(server: Any, worker: Any) -> None:
    os.environ["BP_SLEEPY_WORKER"] = str(worker.age)


class TimedSyncWorker(SyncWorker):
    """SyncWorker that logs `<path> <held us> <epoch start>` per connection with a request."""

    _held_log: Any = None
    _path: str | None = None

    def handle_request(self, listener: Any, req: Any, client: Any, addr: Any) -> None:
        self._path = req.path
        super().handle_request(listener, req, client, addr)

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        self._path = None
        began = time.time()
        start = time.perf_counter()
        try:
            super().handle(listener, client, addr)
        finally:
            held_us = round((time.perf_counter() - start) * 1e6)
            if self._path is not None:
                self._log_held(f"{self._path} {held_us} {began:.6f}\n")

    def _log_held(self, line: str) -> None:
        if self._held_log is None:
            path = os.environ.get("BP_SLEEPY_HELD_LOG")
            if not path:
                return
            # Line-buffered appends: each line is one write(2), whole even with 4 workers.
            self._held_log = open(path, "a", buffering=1, encoding="ascii")  # noqa: SIM115
        self._held_log.write(line)
