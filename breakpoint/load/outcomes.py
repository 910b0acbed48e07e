"""How a run that did not complete ends (docs/design.md#harness): each exception carries the run
folder, which keeps every step measured before; the CLI turns them into one line and an exit code.
"""

from __future__ import annotations

from pathlib import Path

from breakpoint.errors import BreakpointError


class RunFailedError(BreakpointError):
    """The controller failed; the run folder keeps every step measured before."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        super().__init__(
            f"the run failed ({type(cause).__name__}: {cause}); the steps measured "
            f"so far are in {path} (`breakpoint report {path}` renders them)"
        )
        self.path = path


class WorkersLostError(BreakpointError):
    """Every worker of a distributed run is gone; the steps measured before are kept."""


class ScenarioFailedError(BreakpointError):
    """The scenario's own code kept raising: the run stopped; its folder keeps every step."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"{reason}; a failing scenario measures nothing of the target, so the run stopped "
            f"(fix the scenario and run again; the steps measured so far are in {path})"
        )
        self.path = path


class RunInterrupted(Exception):  # noqa: N818 - a signal, not an error
    """The run was stopped by a signal; its folder holds every step measured so far."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path
