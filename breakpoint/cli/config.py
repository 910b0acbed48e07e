"""Settings for `breakpoint run` from a file, as Locust reads its own: `breakpoint.toml`, or the
`[tool.breakpoint]` table of `pyproject.toml`, in the current directory. Keys are the long
option names (`baseline-rps = 30`, `profiles = "desktop-broadband"`, `allow-host = [...]`,
`locustfile = "scenarios/shop.py"`); flags on the command line win
(docs/design.md#locust-conventions).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import click

from breakpoint.errors import ConfigError

FILES = ("breakpoint.toml", "pyproject.toml")


def find_settings(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The first settings file in `folder` with settings for breakpoint, and its table."""
    for name in FILES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"not valid TOML ({exc})", source=str(path)) from None
        if name == "pyproject.toml":
            table = data.get("tool", {}).get("breakpoint")
            if table is None:
                continue
            if not isinstance(table, dict):
                raise ConfigError("must be a table", source=str(path), field="tool.breakpoint")
            return path, table
        return path, data
    return None


def defaults_for(command: click.Command, folder: Path) -> dict[str, Any]:
    """click's default_map for `command` from the settings file (empty without one); every key
    and value is checked here so that a mistake names the file and the key."""
    found = find_settings(folder)
    if found is None:
        return {}
    path, table = found
    params: dict[str, click.Option] = {}
    for declared in command.params:
        if isinstance(declared, click.Option):
            for opt in declared.opts:
                if opt.startswith("--"):
                    params[opt[2:]] = declared
    defaults: dict[str, Any] = {}
    for key, value in table.items():
        param = params.get(str(key).replace("_", "-"))
        if param is None or param.name is None:
            known = ", ".join(sorted(params))
            raise ConfigError(
                f"unknown setting (use a long option name of `breakpoint run`: {known})",
                source=str(path),
                field=str(key),
            )
        values = value if isinstance(value, list) else [value]
        try:
            for v in values:
                param.type.convert(v, param, None)
        except click.BadParameter as exc:
            raise ConfigError(
                f"{exc.message} (as for --{key.replace('_', '-')})", source=str(path), field=key
            ) from None
        defaults[param.name] = values if param.multiple else value
    return defaults
