"""Errors that core code raises and the CLI turns into one clear line and an exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Exit codes of the `breakpoint` command (documented in the README)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    REGRESSION = 3
    INTERRUPTED = 130


class BreakpointError(Exception):
    """A failure that should be shown to the user as one line, without a traceback."""

    exit_status: ExitStatus = ExitStatus.ERROR


class UsageError(BreakpointError):
    """A user mistake: bad option, bad file, unknown name. Exit code 2."""

    exit_status = ExitStatus.USAGE


class ConfigError(UsageError):
    """A configuration file or value is invalid; the message names the file, field and fix."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        where = ": ".join(part for part in (source, field) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.source = source
        self.field = field


class ProfileError(ConfigError):
    """A device/network profile is unknown or invalid."""


class ScenarioError(UsageError):
    """The scenario (locustfile) is missing, does not import, or has no user class."""


class TargetError(UsageError):
    """The target host is unreachable or not allowed."""


class StoreError(BreakpointError):
    """A run directory is missing, unreadable or of an unknown schema."""

    exit_status = ExitStatus.USAGE


class IncompatibleRunsError(UsageError):
    """Two runs cannot be compared (different scenario, profiles, plan or target)."""
