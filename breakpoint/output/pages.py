"""What the `compare` and `history` outputs share: short text for times, multipliers, ratios
and breaks (terminal and HTML alike), a plain-text table, and the Jinja environment of their
self-contained HTML pages (templates in report/templates/, every string escaped).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from breakpoint.runs.summary import BreakPoint


def fmt_when(epoch: float | None) -> str:
    if epoch is None or not math.isfinite(epoch):
        return "–"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def fmt_x(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}X"


def fmt_ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def fmt_p(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def fmt_break(brk: BreakPoint | None, *, interval: bool = False) -> str:
    """One run's (or one label's) break as short text: 9.68X, ≥10X (held), 9.68X [9.1–10.2]."""
    if brk is None:
        return "–"
    if brk.label == "not_reached":
        held = next((v for v in (brk.low, brk.high, brk.multiplier) if v), None)
        return f"≥{held:.3g}X" if held else "holds"
    if brk.multiplier is None:
        return "?"
    text = f"{brk.multiplier:.3g}X"
    if interval and brk.low is not None and brk.high is not None:
        text += f" [{brk.low:.3g}–{brk.high:.3g}]"
    if brk.label == "extrapolated":
        text += "*"
    return text


def plain(text: str, limit: int = 28) -> str:
    """Chart text from user data: shortened (mathtext is switched off where it is drawn)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    """Lines of a plain-text table; the columns numbered in `right` are right-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def _brk_filter(raw: Mapping[str, Any] | None) -> str:
    """A break entry of comparison.json, as the page shows it."""
    return fmt_break(BreakPoint.from_dict(raw) if raw else None, interval=True)


ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "report" / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["when"] = fmt_when
ENV.filters["x"] = fmt_x
ENV.filters["ratio"] = fmt_ratio
ENV.filters["p"] = fmt_p
ENV.filters["brk"] = _brk_filter
ENV.filters["words"] = lambda v: str(v).replace("_", " ")
ENV.filters["pct"] = lambda v: "–" if v is None else f"{v:.1%}"
