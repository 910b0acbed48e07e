"""Locust's own conventions on `breakpoint run`'s command line (docs/design.md#locust-conventions).

The scenario and its user classes as positional arguments (`run file.py ClassA ClassB`) or with
Locust's `-f/--locustfile`; the target from the classes' `host` when `--host` is not given;
Locust's `--tags/--exclude-tags`; and values for the options a scenario adds to Locust's parser
(`--scenario-opt name=value`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from breakpoint.cli.options import options
from breakpoint.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


def _words(values: Sequence[str]) -> tuple[str, ...]:
    """Tags as Locust takes them (space-separated), also comma-separated or repeated."""
    return tuple(w for v in values for w in v.replace(",", " ").split())


scenario_options: Callable[[F], F] = options(
    click.option(
        "-T",
        "--tags",
        multiple=True,
        help="Run only the tasks with one of these tags (repeatable or comma-separated).",
    ),
    click.option(
        "-E",
        "--exclude-tags",
        multiple=True,
        help="Leave out the tasks with one of these tags (repeatable or comma-separated).",
    ),
    click.option(
        "--scenario-opt",
        "scenario_opts",
        multiple=True,
        metavar="NAME=VALUE",
        help="A value for an option the scenario adds with events.init_command_line_parser "
        "(repeatable); it reaches environment.parsed_options.",
    ),
)


@dataclass(frozen=True)
class ScenarioFlags:
    """Locust's options about the scenario, as typed."""

    tags: tuple[str, ...]
    exclude_tags: tuple[str, ...]
    scenario_opts: tuple[str, ...]

    def tag_sets(self) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
        """(tags, exclude_tags); None where not given (Locust's 'no filter')."""
        tags, exclude = _words(self.tags), _words(self.exclude_tags)
        return (tags or None), (exclude or None)

    def option_pairs(self) -> tuple[tuple[str, str], ...]:
        """`name=value` split; a name may be written with or without its dashes."""
        pairs = []
        for entry in self.scenario_opts:
            name, sep, value = entry.partition("=")
            name = name.strip().lstrip("-")
            if not sep or not name:
                raise UsageError(
                    f"--scenario-opt {entry!r}: write NAME=VALUE, e.g. --scenario-opt shop-id=42"
                )
            pairs.append((name, value))
        return tuple(pairs)


def split_scenario_args(args: Sequence[str], locustfile: str | None) -> tuple[str, tuple[str, ...]]:
    """The scenario file and the user classes named after it."""
    if locustfile is not None:
        if args and args[0].endswith(".py"):
            raise UsageError(
                f"{args[0]}: give the scenario once, either as the first argument or with -f"
            )
        return locustfile, tuple(args)
    if not args:
        raise click.UsageError(
            "Missing argument 'SCENARIO' (a locustfile: `run SCENARIO.py [USERCLASS]...` "
            "or -f SCENARIO.py).",
            ctx=click.get_current_context(silent=True),
        )
    return args[0], tuple(args[1:])


def resolve_host(given: str | None, class_hosts: Collection[str], scenario: str) -> str:
    """--host if given, else the one `host` the chosen user classes set."""
    if given:
        return given
    hosts = sorted(set(class_hosts))
    if len(hosts) == 1:
        return hosts[0]
    if not hosts:
        raise UsageError(f"{scenario}: no user class sets `host`: give the target with --host URL")
    raise UsageError(
        f"{scenario}: the user classes set different hosts ({', '.join(hosts)}): "
        "choose the target with --host URL"
    )
