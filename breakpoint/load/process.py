"""Process-wide set-up for sending load: gevent's monkey-patching applied early, and Locust's
logging quieted (docs/design.md#field-notes, "Monkey-patching").
"""

from __future__ import annotations

import logging
from typing import Any


def patch_early() -> None:
    """Import locust, which monkey-patches the process with gevent, before any thread exists:
    patching a process that already runs threads can deadlock. Call it before starting one."""
    import locust  # noqa: F401


def quiet_locust() -> None:
    """Locust's own log lines (spawn-rate advice, worker chatter) would drown the run's output;
    its errors still show."""
    logging.getLogger("locust").setLevel(logging.ERROR)
    # Exceptions in the scenario's users (tasks, on_start) are counted and reported once, with
    # the class, the exception and the scenario's line (crashes.py), and blocked requests once
    # in the summary; Locust would log a full traceback for each one.
    for name in ("locust.user.task", "locust.user.users"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _UserErrorFilter) for f in log.filters):
            log.addFilter(_UserErrorFilter())


class _UserErrorFilter:
    def filter(self, record: Any) -> bool:
        return record.levelno < logging.ERROR
