"""What Locust's own command line gives a locustfile: `environment.parsed_options`, with the
options the scenario adds through `events.init_command_line_parser`, and the tag filters.

breakpoint has its own command line, so a scenario's options are given as
`--scenario-opt name=value`; they are parsed here by Locust's real parser (with the scenario's
additions), so types, defaults and choices behave as under `locust`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from breakpoint.errors import UsageError
from breakpoint.load.scenario import Scenario


def parsed_options(
    scenario: Scenario,
    pairs: Sequence[tuple[str, str]],
    *,
    host: str,
    tags: Sequence[str] | None = None,
    exclude_tags: Sequence[str] | None = None,
) -> argparse.Namespace:
    """Locust's options namespace for this run; UsageError naming a scenario option that the
    scenario does not define or a value its parser refuses."""
    from locust.argument_parser import get_empty_argument_parser, setup_parser_arguments

    parser = get_empty_argument_parser(add_help=False, default_config_files=[])
    setup_parser_arguments(parser)
    before = set(map(id, parser._actions))
    for hook in scenario.parser_hooks:
        hook(parser=parser)
    own = [a for a in parser._actions if id(a) not in before]
    by_name: dict[str, argparse.Action] = {}
    for action in own:
        by_name[action.dest] = action
        for option in action.option_strings:
            by_name[option.lstrip("-")] = action
    listed = ", ".join(a.option_strings[-1] for a in own if a.option_strings) or "none"
    args: list[str] = []
    for name, value in pairs:
        action = by_name.get(name) or by_name.get(name.replace("_", "-"))
        if action is None or not action.option_strings:
            raise UsageError(
                f"--scenario-opt {name}: {scenario.path.name} adds no such option "
                f"(its options: {listed})"
            )
        flag = action.option_strings[-1]
        if action.nargs == 0:  # store_true / store_false
            if value.strip().lower() in ("1", "true", "yes", "on", ""):
                args.append(flag)
            elif value.strip().lower() not in ("0", "false", "no", "off"):
                raise UsageError(f"--scenario-opt {name}={value}: write true or false")
        else:
            args += [flag, value]

    def refuse(message: str) -> Any:
        raise UsageError(f"--scenario-opt: {message} (an option of {scenario.path.name})")

    parser.error = refuse  # type: ignore[method-assign]
    namespace = parser.parse_args(args)
    namespace.host = host
    namespace.locustfile = str(scenario.path)
    namespace.tags = list(tags) if tags else None
    namespace.exclude_tags = list(exclude_tags) if exclude_tags else None
    namespace.headless = True
    return namespace


def check_tags(
    scenario: Scenario, tags: Sequence[str] | None, exclude_tags: Sequence[str] | None
) -> None:
    """Every chosen class keeps a task under the tag filters (as Locust filters them; a nested
    TaskSet counts as kept)."""
    if tags is None and exclude_tags is None:
        return
    want, drop = set(tags or ()), set(exclude_tags or ())
    for cls in scenario.user_classes:
        kept: list[Any] = []
        for task in getattr(cls, "tasks", ()):
            names = getattr(task, "locust_tag_set", None)
            wanted = not want or bool(names and names & want)
            if hasattr(task, "tasks") or (wanted and not (names and names & drop)):
                kept.append(task)
        if not kept:
            raise UsageError(
                f"--tags/--exclude-tags: no task of {cls.__name__} in {scenario.path.name} "
                "is left to run (check the tag names)"
            )
