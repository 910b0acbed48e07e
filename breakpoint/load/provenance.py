"""What run.json records about a run before any load: the plan, profiles and shares, the
scenario's fingerprint, the target, and the versions and git revision that ran it.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from breakpoint import __version__
from breakpoint.load.settings import RunSettings, Segments
from breakpoint.runs.metrics_file import shown


def run_info(settings: RunSettings, seg: Segments) -> dict[str, Any]:
    """The fields of run.json the run writer starts with."""
    plan = settings.plan
    return {
        "model": plan.model,
        "plan": plan.to_dict(),
        "profiles": [p.as_dict() for p in seg.profiles],
        "shares": seg.shares,
        "scenario": {
            "path": str(settings.scenario),
            "fingerprint": seg.scenario.fingerprint,
            "user_classes": [c.__name__ for c in seg.scenario.user_classes],
            "tags": None if settings.tags is None else list(settings.tags),
            "exclude_tags": None if settings.exclude_tags is None else list(settings.exclude_tags),
            # Names only: a scenario option's value may be a credential.
            "options": [name for name, _ in settings.scenario_opts],
            "ignored_shape": seg.scenario.shape,
        },
        "host": settings.host,
        "target": settings.target_info,
        "metrics_urls": [shown(url) for url in settings.metrics_urls],
        "emulation": settings.emulate,
        "generator": {"workers": settings.workers or settings.expect_workers or 0},
        "versions": _versions(),
        "git_rev": _git_rev(settings.scenario),
    }


def _git_rev(near: Path) -> str | None:
    """The git revision of the repository holding the scenario, when there is one."""
    try:
        done = subprocess.run(
            ["git", "-C", str(near.resolve().parent), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def _versions() -> dict[str, str]:
    import locust

    return {
        "breakpoint": __version__,
        "locust": getattr(locust, "__version__", "?"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
