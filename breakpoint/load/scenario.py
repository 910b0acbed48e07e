"""Load a user's locustfile and find its user classes (imports locust: the file does)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from breakpoint.errors import ScenarioError


@dataclass(frozen=True)
class Scenario:
    path: Path
    user_classes: tuple[type, ...]
    fingerprint: str


def fingerprint_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_scenario(path: Path) -> Scenario:
    """Import the locustfile and return its concrete user classes; errors name the file."""
    from locust import User

    if not path.is_file():
        raise ScenarioError(
            f"{path}: scenario file not found (give a locustfile, e.g. scenarios/shop.py)"
        )
    if path.suffix != ".py":
        raise ScenarioError(f"{path}: a scenario must be a Python locustfile ending in .py")
    module_name = f"bp_scenario_{fingerprint_file(path)}"
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
        # The scenario's own line: the deepest frame in the scenario file, not in a library.
        own = [
            f
            for f in traceback.extract_tb(exc.__traceback__)
            if Path(f.filename).resolve() == path.resolve()
        ]
        line = own[-1].lineno if own else traceback.extract_tb(exc.__traceback__)[-1].lineno
        raise ScenarioError(
            f"{path}: importing the scenario failed at line {line}: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        sys.path.pop(0)
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, User)
        and obj is not User
        and not getattr(obj, "abstract", False)
        and obj.__module__ == module_name
    ]
    if not classes:
        raise ScenarioError(
            f"{path}: no Locust user class found (define a class deriving from HttpUser or "
            "FastHttpUser with at least one @task)"
        )
    for cls in classes:
        if not getattr(cls, "tasks", None):
            raise ScenarioError(f"{path}: user class {cls.__name__} has no @task")
    return Scenario(path, tuple(classes), fingerprint_file(path))
