"""The package's layers keep to their rules (docs/design.md#code-layout): only `load` imports
locust or gevent, the analysis imports no I/O layer, and the commands that read stored runs
(`report`, `compare`, `history`) never import locust."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "breakpoint"
LAYERS = ("analysis", "cli", "demo", "load", "output", "plan", "runs", "sim")
# What each layer may import from the others (errors and results are shared vocabulary).
ALLOWED = {
    "plan": set(),
    "analysis": {"plan"},
    "sim": {"plan", "analysis"},
    "runs": {"plan", "analysis"},
    "output": {"plan", "analysis", "runs"},
    "load": {"plan", "analysis", "runs"},
    "demo": {"plan", "analysis", "runs", "output", "load"},
    "cli": {"plan", "analysis", "runs", "output", "load", "demo", "sim"},
}
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "builtin_" not in str(p))


def _layer(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 and rel[0] in LAYERS else None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_what_its_layer_may(path: Path) -> None:
    """locust/gevent only in `load`; a layer imports only the layers below it."""
    layer = _layer(path)
    for name in _imports(path):
        top = name.split(".")[0]
        if top in ("locust", "gevent", "geventhttpclient"):
            assert layer == "load", f"{path.name} imports {name} outside the load layer"
        if top == "breakpoint" and name.count(".") >= 1:
            other = name.split(".")[1]
            if other in LAYERS and layer is not None and other != layer:
                assert other in ALLOWED[layer], f"{layer}/{path.name} imports {name}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_the_size_limit(path: Path) -> None:
    """Modules stay small enough to read in one sitting."""
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines"


def test_each_layer_says_what_it_owns() -> None:
    """Every layer's __init__ has a docstring naming what it owns and may import."""
    for layer in LAYERS:
        init = PACKAGE / layer / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "import" in doc.lower(), f"{layer}/__init__.py"


def test_reading_stored_runs_does_not_import_locust() -> None:
    """`report`, `compare` and `history` work on stored runs without gevent's monkey-patching:
    the CLI imports the load layer only inside the commands that send load."""
    code = (
        "import sys, pkgutil, importlib, breakpoint\n"
        "for layer in ('analysis', 'cli', 'output', 'runs', 'plan', 'sim'):\n"
        "    pkg = importlib.import_module('breakpoint.' + layer)\n"
        "    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "bad = [m for m in ('locust', 'gevent') if m in sys.modules]\n"
        "sys.exit(', '.join(bad) or None)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
