"""Load a user's locustfile and find its user classes (imports locust: the file does).

As Locust does: every concrete `User` subclass of the file is a candidate (HttpUser,
FastHttpUser, or a plain `User` with its own client); classes can be picked by name; a class
without tasks is skipped unless it was picked (a task-less base class is a common place for
shared set-up); a `LoadTestShape` is found so the CLI can say it is ignored.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from breakpoint.errors import ScenarioError


@dataclass(frozen=True)
class Scenario:
    path: Path
    user_classes: tuple[type, ...]
    fingerprint: str
    # A LoadTestShape class defined in the file (breakpoint drives the load itself).
    shape: str | None = None
    # The listeners of events.init_command_line_parser the file added (its own options).
    parser_hooks: tuple[Callable[..., Any], ...] = field(default=(), compare=False)

    @property
    def hosts(self) -> set[str]:
        """The `host` the chosen classes set (empty when none does)."""
        return {str(getattr(c, "host", "")) for c in self.user_classes if getattr(c, "host", None)}


# A file is imported once per process: a second import would register its event listeners
# (init_command_line_parser, test_start, ...) twice.
_LOADED: dict[tuple[str, str], tuple[ModuleType, tuple[Callable[..., Any], ...]]] = {}


def fingerprint_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _import(path: Path, fingerprint: str) -> tuple[ModuleType, tuple[Callable[..., Any], ...]]:
    key = (str(path.resolve()), fingerprint)
    if key in _LOADED:
        return _LOADED[key]
    import locust

    hook = locust.events.init_command_line_parser
    before = list(hook._handlers)
    module_name = f"bp_scenario_{fingerprint}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ScenarioError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ScenarioError(
            f"{path}: importing the scenario failed at line {exc.lineno}: SyntaxError: {exc.msg}"
        ) from None
    except Exception as exc:
        line = scenario_line(path, exc.__traceback__)
        raise ScenarioError(
            f"{path}: importing the scenario failed at line {line}: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        sys.path.pop(0)
    hooks = tuple(h for h in hook._handlers if h not in before)
    _LOADED[key] = (module, hooks)
    return module, hooks


def scenario_line(path: Path, tb: Any) -> int | None:
    """The scenario's own line in a traceback: the deepest frame in the scenario file, else
    the deepest frame."""
    where = scenario_frame(path, tb)
    return where[1] if where else None


def scenario_frame(path: Path, tb: Any) -> tuple[str, int | None] | None:
    """(file, line) of the deepest frame in the scenario file; else of the deepest frame."""
    frames = traceback.extract_tb(tb)
    if not frames:
        return None
    resolved = path.resolve()
    own = [f for f in frames if Path(f.filename).resolve() == resolved]
    frame = own[-1] if own else frames[-1]
    return frame.filename, frame.lineno


def load_scenario(path: Path, names: Sequence[str] = ()) -> Scenario:
    """Import the locustfile and return its user classes (those named, or every class with
    tasks); errors name the file."""
    from locust import LoadTestShape, User

    if not path.is_file():
        raise ScenarioError(
            f"{path}: scenario file not found (give a locustfile, e.g. scenarios/shop.py)"
        )
    if path.suffix != ".py":
        raise ScenarioError(f"{path}: a scenario must be a Python locustfile ending in .py")
    fingerprint = fingerprint_file(path)
    module, hooks = _import(path, fingerprint)
    own = [obj for obj in vars(module).values() if isinstance(obj, type)]
    found = {
        obj.__name__: obj
        for obj in own
        if issubclass(obj, User)
        and obj is not User
        and not getattr(obj, "abstract", False)
        # Classes defined in the file, and classes it imports and picks by name.
        and (obj.__module__ == module.__name__ or obj.__name__ in names)
    }
    shapes = [
        o.__name__
        for o in own
        if issubclass(o, LoadTestShape)
        and o is not LoadTestShape
        and o.__module__ == module.__name__
        and not getattr(o, "abstract", False)
    ]
    if names:
        unknown = [n for n in names if n not in found]
        if unknown:
            listed = ", ".join(sorted(found)) or "none"
            raise ScenarioError(
                f"{path}: no user class named {', '.join(unknown)} (the file defines: {listed})"
            )
        classes = [found[n] for n in dict.fromkeys(names)]
        for cls in classes:
            if not getattr(cls, "tasks", None):
                raise ScenarioError(f"{path}: user class {cls.__name__} has no @task")
    else:
        classes = [c for c in found.values() if getattr(c, "tasks", None)]
    if not classes:
        raise ScenarioError(
            f"{path}: no Locust user class with tasks found (define a class deriving from "
            "HttpUser, FastHttpUser or User with at least one @task)"
        )
    return Scenario(path, tuple(classes), fingerprint, shapes[0] if shapes else None, hooks)
