"""A small WSGI app for the accuracy benchmark's gunicorn case (benchmarks/accuracy.py).

GET /work sleeps an exponential service time (mean BP_SLEEPY_MEAN_MS, default 20 ms) and answers
a small body. Under gunicorn's sync workers each worker serves one request at a time, so c
workers fed by Poisson arrivals are an M/M/c queue. The draws are seeded: worker k (gunicorn's
`age`, handed over by the post_fork hook in benchmarks/sleepy_gunicorn.py through
BP_SLEEPY_WORKER) uses seed BP_SLEEPY_SEED x 1000 + k, so a seed fixes every worker's sequence.
The drawn time goes out in the X-Drawn-Us header, which the access log can record next to
gunicorn's own request time (%(D)s).

Any other path answers 404 at once (no sleep). Standard library only.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

MEAN_MS = float(os.environ.get("BP_SLEEPY_MEAN_MS", "20"))
SEED = int(os.environ.get("BP_SLEEPY_SEED", "1"))
WORKER = int(os.environ.get("BP_SLEEPY_WORKER", "0"))
BODY = b"done\n"

_rng = random.Random(SEED * 1000 + WORKER)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") != "/work":
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"not found\n"]
    drawn_s = _rng.expovariate(1000.0 / MEAN_MS)
    time.sleep(drawn_s)
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Content-Length", str(len(BODY))),
            ("X-Drawn-Us", str(round(drawn_s * 1e6))),
        ],
    )
    return [BODY]
