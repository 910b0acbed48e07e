"""Latency objectives the way teams write them: per endpoint and per page view, k6-style.

An objective is a percentile threshold on one target: an endpoint (a request's `name=`, else its
URL path) or `page_view` (one iteration of the scenario: what the person waits for, from its
intended start to its last request's end). The syntax follows k6's thresholds:
`"p(95)<800"` (milliseconds). Objectives come from a profile's `[objectives]` table (that
segment), a scenario's `bp_objectives` class attribute (product-wide) and `--objective` (product-
wide, or one profile with `PROFILE::`). A segment breaks at the first objective it crosses
(docs/design.md#objectives). Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from breakpoint.errors import ProfileError

if TYPE_CHECKING:
    from breakpoint.plan.profiles import Profile

PAGE_VIEW = "page_view"  # the target name users write
# The key under which the recorder stores page views among a segment's endpoints: not a URL,
# so it cannot collide with a request's name.
PAGE_VIEW_KEY = "(page view)"

_EXPR = re.compile(r"^\s*p\(\s*(\d+(?:\.\d+)?)\s*\)\s*(<=|<)\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$")
_CLI = re.compile(
    r"^(?:(?P<profile>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})::)?(?P<target>.+)=(?P<expr>\s*p\(.*)$"
)
SYNTAX_FIX = 'write a k6-style threshold in milliseconds, e.g. "p(95)<800"'


@dataclass(frozen=True)
class Objective:
    """`target`'s `percentile`-th latency percentile must stay below `threshold_ms`."""

    target: str  # PAGE_VIEW or an endpoint name
    percentile: float
    threshold_ms: float
    origin: str = ""  # where it was set: a profile file, the scenario, --objective

    @property
    def key(self) -> str:
        """The endpoint key its measurements are stored under."""
        return PAGE_VIEW_KEY if self.target == PAGE_VIEW else self.target

    @property
    def expression(self) -> str:
        return f"p({self.percentile:g})<{self.threshold_ms:g}"

    @property
    def label(self) -> str:
        """How reports name it: `page view p(95)<6000 ms`, `/api/search p(95)<800 ms`."""
        what = "page view" if self.target == PAGE_VIEW else self.target
        return f"{what} {self.expression} ms"

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "percentile": self.percentile,
            "threshold_ms": self.threshold_ms,
            "origin": self.origin,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Objective:
        return cls(
            str(d["target"]),
            float(d["percentile"]),
            float(d["threshold_ms"]),
            str(d.get("origin", "")),
        )


def parse_expression(text: Any, *, source: str, field: str) -> tuple[float, float]:
    """`"p(95)<800"` -> (95.0, 800.0); ProfileError naming the file, the field and the fix."""
    if not isinstance(text, str):
        raise ProfileError(
            f"must be a string, got {text!r} ({SYNTAX_FIX})", source=source, field=field
        )
    m = _EXPR.match(text)
    if m is None:
        raise ProfileError(f"cannot read {text!r} ({SYNTAX_FIX})", source=source, field=field)
    pct, value, unit = float(m.group(1)), float(m.group(3)), m.group(4)
    ms = value * 1000.0 if unit == "s" else value
    if not 0 < pct < 100:
        raise ProfileError(
            f"percentile {pct:g} must be between 0 and 100, e.g. p(95)", source=source, field=field
        )
    if not (ms > 0 and math.isfinite(ms)):
        raise ProfileError(
            f"threshold must be more than 0 ms, got {text!r}", source=source, field=field
        )
    return pct, ms


def parse_objectives(
    table: Any, *, source: str, field: str = "objectives"
) -> tuple[Objective, ...]:
    """A mapping target -> expression or list of expressions (TOML table, class attribute)."""
    if not isinstance(table, Mapping):
        raise ProfileError(
            f'must be a table of target = threshold, e.g. {{ page_view = "p(95)<3000" }}, '
            f"got {table!r}",
            source=source,
            field=field,
        )
    out: list[Objective] = []
    for target, value in table.items():
        where = f"{field}.{target}"
        if not isinstance(target, str) or not target.strip():
            raise ProfileError(
                "a target must be page_view or an endpoint name", source=source, field=field
            )
        values = value if isinstance(value, list | tuple) else [value]
        if not values:
            raise ProfileError(f"no threshold given ({SYNTAX_FIX})", source=source, field=where)
        for expr in values:
            pct, ms = parse_expression(expr, source=source, field=where)
            out.append(Objective(target.strip(), pct, ms, source))
    return tuple(out)


def parse_cli_objective(text: str) -> tuple[str | None, Objective]:
    """`--objective [PROFILE::]TARGET=p(N)<MS` -> (profile or None for all, objective)."""
    m = _CLI.match(text.strip())
    if m is None:
        raise ProfileError(
            f"cannot read {text!r}: write TARGET=p(95)<800 or PROFILE::TARGET=p(95)<800 "
            "(TARGET is page_view or an endpoint name)",
            source="--objective",
        )
    pct, ms = parse_expression(m.group("expr"), source="--objective", field=m.group("target"))
    return m.group("profile"), Objective(m.group("target").strip(), pct, ms, "--objective")


def merge(*layers: Iterable[Objective]) -> tuple[Objective, ...]:
    """Later layers replace earlier ones on the same target and percentile; order is kept."""
    chosen: dict[tuple[str, float], Objective] = {}
    for layer in layers:
        for obj in layer:
            chosen.pop((obj.target, obj.percentile), None)
            chosen[(obj.target, obj.percentile)] = obj
    return tuple(chosen.values())


def for_profile(
    name: str,
    own: Sequence[Objective],
    product_wide: Sequence[Objective] = (),
    cli: Sequence[tuple[str | None, Objective]] = (),
) -> tuple[Objective, ...]:
    """A profile's objectives: the scenario's product-wide ones, its own file's, then the command
    line's (product-wide, then those scoped to this profile), each replacing the one before on
    the same target and percentile."""
    return merge(
        product_wide,
        own,
        [o for scope, o in cli if scope is None],
        [o for scope, o in cli if scope == name],
    )


def describe(objectives: Sequence[Objective]) -> str:
    return ", ".join(o.label for o in objectives)


def scenario_objectives(classes: Iterable[type], *, source: str) -> tuple[Objective, ...]:
    """The product-wide objectives a scenario declares as `bp_objectives` on its user classes
    (`{"page_view": "p(95)<3000", "/api/search": "p(95)<800"}`)."""
    found: list[Objective] = []
    for cls in classes:
        table = getattr(cls, "bp_objectives", None)
        if table is not None:
            found += parse_objectives(
                table, source=f"{source} (scenario)", field=f"{cls.__name__}.bp_objectives"
            )
    return merge(found)


def apply(
    profiles: Sequence[Profile],
    product_wide: Sequence[Objective] = (),
    cli: Sequence[tuple[str | None, Objective]] = (),
) -> tuple[Profile, ...]:
    """Each profile with its objectives from every source (for_profile); a --objective scoped
    to a profile that is not in the run is refused."""
    names = {p.name for p in profiles}
    for scope, obj in cli:
        if scope is not None and scope not in names:
            raise ProfileError(
                f"profile {scope!r} of {scope}::{obj.target} is not in this run "
                f"(profiles: {', '.join(sorted(names))})",
                source="--objective",
            )
    return tuple(
        p.with_objectives(for_profile(p.name, p.slo.objectives, product_wide, cli))
        for p in profiles
    )
