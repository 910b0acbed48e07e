"""`breakpoint compare` and `breakpoint history`: stored runs in, tables and reports out.

The I/O around the pure comparison (compare.py): resolve run references (a folder, a run id or a
label meaning all its runs), read each run's `summary.json` (publishing a killed run first),
print a terminal table and a verdict, write `comparison.json` and a self-contained
`comparison.html` into a new `compare-<base>-vs-<new>-<time>/` folder beside the runs, and embed
the comparison in the new runs' own reports. `history` reads the run index (index.py) and prints
every run with its segments' breaking points, optionally as an HTML trend report.

Never imports locust: comparing stored runs must not monkey-patch anything.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import matplotlib.pyplot as plt
from markupsafe import Markup

from breakpoint import __version__
from breakpoint.analysis.release import Comparison, SegmentComparison, compare, history
from breakpoint.errors import StoreError, UsageError
from breakpoint.output.report import (
    plots,  # also selects matplotlib's Agg backend before any figure exists
)
from breakpoint.runs.index import indexed_runs
from breakpoint.runs.store import RUN_FILE, STEPS_FILE, load_run, resolve_runs, write_json

Say = Callable[[str], None]

# Version of comparison.json; bump with a note when fields change.
# 1: first version (Comparison.to_dict() plus the refs, labels and each side's runs).
COMPARISON_SCHEMA = 1
COMPARISON_JSON = "comparison.json"
COMPARISON_HTML = "comparison.html"
SUMMARY_FILE = "summary.json"  # publish.SUMMARY_FILE (publish is imported only when needed)
SUMMARY_SCHEMAS = (1,)  # summary.json versions this module reads
# A run folder still written to this recently may belong to a search in progress: publishing it
# now would compare half a run. Longer than any sensible step (warm-up + hold + drain).
ACTIVE_RUN_S = 300.0
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "report" / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt_when(epoch: float | None) -> str:
    if epoch is None or not math.isfinite(epoch):
        return "–"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def _fmt_x(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}X"


def _fmt_ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _fmt_p(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def _fmt_break(brk: Mapping[str, Any] | None, *, interval: bool = False) -> str:
    """One run's (or one label's) break as short text: 9.68X, ≥10X (held), 9.68X [9.1–10.2]."""
    if not brk:
        return "–"
    if brk.get("label") == "not_reached":
        held = next((brk[k] for k in ("low", "cap", "high", "multiplier") if brk.get(k)), None)
        return f"≥{held:.3g}X" if held else "holds"
    multiplier = brk.get("multiplier")
    if multiplier is None:
        return "?"
    text = f"{multiplier:.3g}X"
    low, high = brk.get("low"), brk.get("high")
    if interval and low is not None and high is not None:
        text += f" [{low:.3g}–{high:.3g}]"
    if brk.get("label") == "extrapolated":
        text += "*"
    return text


_ENV.filters["when"] = _fmt_when
_ENV.filters["x"] = _fmt_x
_ENV.filters["ratio"] = _fmt_ratio
_ENV.filters["p"] = _fmt_p
_ENV.filters["brk"] = lambda b: _fmt_break(b, interval=True)
_ENV.filters["words"] = lambda v: str(v).replace("_", " ")
_ENV.filters["pct"] = lambda v: "–" if v is None else f"{v:.1%}"


# --------------------------------------------------------------------------------------------
# Loading runs


@dataclass(frozen=True)
class SideRun:
    """One run of one side of a comparison: its folder and its summary.json."""

    path: Path
    summary: Mapping[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id") or self.path.name)


def _read_summary(path: Path) -> dict[str, Any]:
    file = path / SUMMARY_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"{file}: unreadable ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") not in SUMMARY_SCHEMAS:
        schema = data.get("schema") if isinstance(data, dict) else None
        raise StoreError(
            f"{file}: schema {schema!r} is not supported by this version "
            f"(expects {'/'.join(map(str, SUMMARY_SCHEMAS))}); re-run `breakpoint report {path}`"
        )
    data.setdefault("run_id", path.name)
    return data


def _last_write_s(path: Path) -> float:
    stamps = []
    for name in (RUN_FILE, STEPS_FILE):
        try:
            stamps.append((path / name).stat().st_mtime)
        except OSError:
            continue
    return max(stamps, default=0.0)


def _unpublished_problem(path: Path) -> str | None:
    """Why a run without summary.json cannot be published now; None when it can."""
    stored = load_run(path)
    status = stored.info.get("status", "unknown")
    if not stored.steps:
        return (
            f"run {stored.run_id} has no summary.json and no measured steps "
            f"(status {status}): nothing to compare"
        )
    age_s = time.time() - _last_write_s(path)
    if status == "running" and age_s < ACTIVE_RUN_S:
        return (
            f"run {stored.run_id} is still running (last written {age_s:.0f} s ago): "
            "compare it once it has finished"
        )
    return None


def _load_side(out_dir: Path, ref: str, side: str, say: Say) -> list[SideRun]:
    """The runs a reference names, each with its summary; killed runs are published first.

    A run named directly that cannot be compared is refused; a run reached through its label
    is skipped with a warning, as long as the label still has runs to compare.
    """
    paths = resolve_runs(out_dir, ref)
    direct = len(paths) == 1 and ((Path(ref) / RUN_FILE).is_file() or paths[0].name == ref)
    runs: list[SideRun] = []
    for path in paths:
        if not (path / SUMMARY_FILE).is_file():
            problem = _unpublished_problem(path)
            if problem is not None:
                if direct:
                    raise StoreError(f"{path}: {problem}")
                say(f"warning: {side} {ref!r}: skipping {path.name}: {problem}")
                continue
            from breakpoint.output.publish import publish

            say(f"{path.name}: no summary.json (the run did not finish): publishing it first")
            publish(path)  # also indexes it
        runs.append(SideRun(path, _read_summary(path)))
    if not runs:
        raise StoreError(f"{ref!r}: none of its {len(paths)} runs can be compared (see above)")
    return runs


# --------------------------------------------------------------------------------------------
# Terminal output


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def _interval(seg: SegmentComparison) -> str:
    if seg.ratio_low is None and seg.ratio_high is None:
        return ""
    low = "0" if seg.ratio_low is None else f"{seg.ratio_low:.2f}"
    high = "∞" if seg.ratio_high is None else f"{seg.ratio_high:.2f}"
    return f" [{low}–{high}]"


def _stopped_early(side: str, runs: Sequence[SideRun]) -> list[str]:
    """Runs whose "held" segments only held as far as the run went, short of its cap.

    summary.json labels such a segment not_reached with the last trusted step as its bound, and
    the comparison counts it there: two runs stopped at different loads then read as "held on
    both sides". Never silent (STYLE: a suspect number is shown as such).
    """
    out = []
    for run in runs:
        cap = run.summary.get("max_multiplier")
        if not isinstance(cap, int | float):
            continue
        short = [
            (str(seg.get("profile")), bound)
            for seg in run.summary.get("segments") or []
            if isinstance(seg, Mapping)
            and isinstance(brk := seg.get("break"), Mapping)
            and brk.get("label") == "not_reached"
            and isinstance(bound := brk.get("low"), int | float)
            and bound < cap * 0.999
        ]
        if short:
            top = max(bound for _, bound in short)
            out.append(
                f"{side} run {run.run_id} stopped at {top:g}X, below its cap {cap:g}X: "
                f"{', '.join(p for p, _ in short)} held only that far, which is not evidence of "
                "no change (see its report's warnings)"
            )
    return out


def _held(runs: Sequence[SideRun], profile: str) -> bool:
    """Whether some run of a side held this segment up to the cap (its mean is then a bound)."""
    return any(brk.get("label") == "not_reached" for brk in _run_marks(runs, profile))


def _comparison_rows(
    comparison: Comparison, base: Sequence[SideRun], new: Sequence[SideRun]
) -> list[list[str]]:
    def side(multiplier: float | None, runs: Sequence[SideRun], profile: str, n: int) -> str:
        bound = "≥" if _held(runs, profile) else ""
        return f"{bound}{_fmt_x(multiplier)} ({n})"

    return [
        [
            s.profile,
            side(s.base_multiplier, base, s.profile, s.base_runs),
            side(s.new_multiplier, new, s.profile, s.new_runs),
            f"{_fmt_ratio(s.ratio)}{_interval(s)}",
            _fmt_p(s.p_value),
            s.verdict.replace("_", " "),
            "–" if s.runs_needed is None else str(s.runs_needed),
        ]
        for s in comparison.segments
    ]


def _verdict_line(comparison: Comparison) -> str:
    segments = comparison.segments

    def names(verdict: str) -> str:
        return ", ".join(s.profile for s in segments if s.verdict == verdict)

    if comparison.verdict == "regression":
        worst = min(comparison.regressions, key=lambda s: s.ratio or math.inf)
        moved = (
            f"{worst.profile} breaks at {_fmt_ratio(worst.ratio)} × the base "
            f"({_fmt_x(worst.base_multiplier)} → {_fmt_x(worst.new_multiplier)})"
        )
        if len(comparison.regressions) > 1:
            return f"verdict: REGRESSION in {names('regression')}; worst: {moved} – exit 3"
        return f"verdict: REGRESSION: {moved} – exit 3"
    if comparison.verdict == "inconclusive":
        needed = [s.runs_needed for s in segments if s.runs_needed is not None]
        hint = (
            f"; about {max(needed)} runs a side would decide (`breakpoint run --repeat N`)"
            if needed
            else ""
        )
        return (
            f"verdict: inconclusive for {names('inconclusive')}{hint}"
            if segments
            else ("verdict: inconclusive: no segment was measured on both sides")
        )
    if comparison.verdict == "improvement":
        return f"verdict: improvement in {names('improvement')}, no regression"
    bands = sorted({s.noise_band for s in segments})
    band = "/".join(f"{b:.0%}" for b in bands)
    return f"verdict: no change (every segment within the noise band ±{band})"


def _labels(ref: str, runs: Sequence[SideRun]) -> str:
    labels = list(dict.fromkeys(str(r.summary.get("label") or "") for r in runs))
    return ", ".join(lb for lb in labels if lb) or ref


def _side_name(ref: str, runs: Sequence[SideRun]) -> str:
    return f"{_labels(ref, runs)} ({len(runs)} run{'s' if len(runs) != 1 else ''})"


# --------------------------------------------------------------------------------------------
# Charts (matplotlib SVG, like report/plots.py)


def _plain(text: str, limit: int = 28) -> str:
    """Chart text from user data: shortened (mathtext is switched off where it is drawn)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _run_marks(runs: Sequence[SideRun], profile: str) -> list[Mapping[str, Any]]:
    marks = []
    for run in runs:
        for seg in run.summary.get("segments") or []:
            if isinstance(seg, Mapping) and seg.get("profile") == profile:
                brk = seg.get("break")
                if isinstance(brk, Mapping):
                    marks.append(brk)
    return marks


def comparison_chart(
    comparison: Comparison, base: Sequence[SideRun], new: Sequence[SideRun]
) -> str:
    """Per segment: each run's break with its interval, base above new, geometric means bold."""
    segments = comparison.segments
    fig, ax = plt.subplots(figsize=(7.5, 0.7 + 0.75 * max(1, len(segments))))
    colours = {"base": plots.PALETTE[0], "new": plots.PALETTE[1]}
    top = 1.0
    labelled: set[str] = set()
    for y_seg, seg in enumerate(reversed(segments)):
        for side, runs, offset, mean in (
            ("base", base, 0.17, seg.base_multiplier),
            ("new", new, -0.17, seg.new_multiplier),
        ):
            colour = colours[side]
            marks = _run_marks(runs, seg.profile)
            spread = 0.12 / max(1, len(marks))
            for i, brk in enumerate(marks):
                y = y_seg + offset + (i - (len(marks) - 1) / 2) * spread
                if brk.get("label") == "not_reached":
                    held = next((brk[k] for k in ("low", "high", "multiplier") if brk.get(k)), None)
                    if held:
                        key = f"{side} held"
                        ax.plot(
                            [held],
                            [y],
                            marker=">",
                            color=colour,
                            mfc="none",
                            markersize=6,
                            lw=0,
                            label=None if key in labelled else f"{side}: held up to the cap",
                        )
                        labelled.add(key)
                        top = max(top, held)
                    continue
                m = brk.get("multiplier")
                if m is None:
                    continue
                low, high = brk.get("low") or m, brk.get("high") or m
                ax.plot([low, high], [y, y], color=colour, lw=1.2, alpha=0.7)
                ax.plot([m], [y], marker="o", color=colour, markersize=3.5, alpha=0.8)
                top = max(top, high)
            if mean is not None and not all(b.get("label") == "not_reached" for b in marks):
                ax.plot(
                    [mean],
                    [y_seg + offset],
                    marker="D",
                    color=colour,
                    markersize=7,
                    mec="white",
                    label=None if side in labelled else f"{side} (geometric mean)",
                )
                labelled.add(side)
                top = max(top, mean)
    ax.set_yticks(
        range(len(segments)),
        [f"{_plain(s.profile)}\n{s.verdict.replace('_', ' ')}" for s in reversed(segments)],
        parse_math=False,
    )
    ax.axvline(1.0, color="#999999", lw=1, ls="--")
    ax.set_xlim(0, top * 1.1)
    ax.set_ylim(-0.6, len(segments) - 0.4)
    ax.set_xlabel("breaking point (load multiplier); lines: each run's 95% interval")
    ax.grid(axis="y", visible=False)
    if labelled:
        # Outside the axes: breaks cluster on the right, where a legend inside would hide them.
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return plots._svg(fig)


def trend_chart(profile: str, points: Sequence[Mapping[str, Any]], colour: str) -> str:
    """One segment's breaking point per label (release) in time order, with intervals."""
    fig, ax = plt.subplots(figsize=(4.8, 3.0))
    xs = list(range(len(points)))
    top = 1.0
    for x, point in zip(xs, points, strict=True):
        m = point.get("multiplier")
        if m is not None and point.get("status") != "not_reached":
            low = point.get("low") or m
            high = point.get("high") or m
            ax.errorbar(
                [x],
                [m],
                yerr=[[max(0.0, m - low)], [max(0.0, high - m)]],
                fmt="o",
                color=colour,
                capsize=3,
                markersize=5,
            )
            top = max(top, high)
        if point.get("not_reached") and point.get("cap"):
            ax.plot([x], [point["cap"]], marker="^", color=colour, mfc="none", markersize=8)
            top = max(top, point["cap"])
    measured = [(x, p["multiplier"]) for x, p in zip(xs, points, strict=True) if p["multiplier"]]
    if len(measured) > 1:
        ax.plot([x for x, _ in measured], [m for _, m in measured], color=colour, lw=1, alpha=0.5)
    ax.set_xticks(
        xs,
        [_plain(str(p["label"]), 18) for p in points],
        rotation=30,
        ha="right",
        fontsize=7,
        parse_math=False,
    )
    ax.set_xlim(-0.5, len(points) - 0.5)
    ax.set_ylim(0, top * 1.15)
    ax.set_ylabel("breaking point (X)")
    ax.set_title(_plain(profile, 40), fontsize=10, loc="left", parse_math=False)
    ax.grid(axis="x", visible=False)
    return plots._svg(fig)


# --------------------------------------------------------------------------------------------
# compare


def _slug(ref: str) -> str:
    """A reference as part of a folder name: a run folder by its name, a label as it is."""
    name = Path(ref).name if (Path(ref) / RUN_FILE).is_file() else ref
    return _SAFE.sub("-", name).strip("-")[:40] or "run"


def _new_folder(out_dir: Path, base: str, new: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
    stem = f"compare-{_slug(base)}-vs-{_slug(new)}-{stamp}"
    for attempt in range(100):
        folder = out_dir / (stem if attempt == 0 else f"{stem}-{attempt + 1}")
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            continue  # two comparisons in the same second
        except OSError as exc:
            raise StoreError(f"{folder}: cannot create the comparison folder: {exc}") from None
        return folder
    raise StoreError(f"{out_dir}: cannot find a free name for {stem}")


def _run_entry(run: SideRun, out_dir: Path) -> dict[str, Any]:
    s = run.summary
    return {
        "run_id": run.run_id,
        "label": s.get("label"),
        "path": str(run.path),
        "created_at": s.get("created_at"),
        "git_rev": s.get("git_rev"),
        "status": s.get("status"),
        "report": f"../{run.path.name}/report.html" if run.path.parent == out_dir else None,
        "segments": {
            str(seg["profile"]): seg.get("break")
            for seg in s.get("segments") or []
            if isinstance(seg, Mapping) and "profile" in seg
        },
    }


def run_compare(
    base: str,
    new: str,
    *,
    out_dir: Path,
    force: bool = False,
    noise_band: float | None = None,
    say: Say = print,
) -> int:
    """Compare the runs named by `base` and `new`; returns the exit code (0, or 3 on regression)."""
    base_runs = _load_side(out_dir, base, "base", say)
    new_runs = _load_side(out_dir, new, "new", say)
    shared = {r.path.resolve() for r in base_runs} & {r.path.resolve() for r in new_runs}
    if shared:
        names = ", ".join(sorted(p.name for p in shared))
        raise UsageError(f"run {names} is on both sides of the comparison: compare other runs")
    comparison = compare(
        [r.summary for r in base_runs],
        [r.summary for r in new_runs],
        noise_band=noise_band,
        force=force,
    )

    say(f"base: {_side_name(base, base_runs)}   new: {_side_name(new, new_runs)}")
    headers = ["segment", "base", "new", "new/base [95%]", "p", "verdict", "runs needed"]
    rows = _comparison_rows(comparison, base_runs, new_runs)
    for line in _table(headers, rows, right={1, 2, 4, 6}):
        say(line)
    warnings = [
        *comparison.warnings,
        *_stopped_early("base", base_runs),
        *_stopped_early("new", new_runs),
    ]
    for warning in warnings:
        say(f"warning: {warning}")
    for seg in comparison.segments:
        if seg.note:
            say(f"note: {seg.profile}: {seg.note}")
    say(_verdict_line(comparison))

    out_dir_resolved = out_dir.resolve()
    folder = _new_folder(out_dir, base, new)
    base_label, new_label = _labels(base, base_runs), _labels(new, new_runs)
    document = {
        "schema": COMPARISON_SCHEMA,
        "created_at": time.time(),
        "base_ref": base,
        "new_ref": new,
        "base_label": base_label,
        "new_label": new_label,
        "noise_band_option": noise_band,
        "force": force,
        **comparison.to_dict(),
        "warnings": warnings,
        "base_runs": [_run_entry(r, out_dir_resolved) for r in _resolved(base_runs)],
        "new_runs": [_run_entry(r, out_dir_resolved) for r in _resolved(new_runs)],
        "versions": {"breakpoint": __version__},
    }
    write_json(folder / COMPARISON_JSON, document)
    html = _ENV.get_template("comparison.html.j2").render(
        doc=document,
        comparison=comparison,
        warnings=warnings,
        held={
            seg.profile: {
                "base": _held(base_runs, seg.profile),
                "new": _held(new_runs, seg.profile),
            }
            for seg in comparison.segments
        },
        chart=Markup(comparison_chart(comparison, base_runs, new_runs))
        if comparison.segments
        else None,
    )
    (folder / COMPARISON_HTML).write_text(html, encoding="utf-8")

    embedded = {
        **comparison.to_dict(),
        "segments": [_for_report(seg) for seg in comparison.segments],
        "warnings": warnings,
        "base_label": base_label,
        "folder": str(folder),
    }
    not_updated = [run.path.name for run in new_runs if not _embed(run, embedded, say)]
    if not_updated:
        say(
            f"note: no stored steps in {', '.join(not_updated)}: "
            "the comparison is not embedded in their reports"
        )
    say(f"comparison report: {folder / COMPARISON_HTML}")
    say(str(folder))
    return comparison.exit_code()


def _for_report(seg: SegmentComparison) -> dict[str, Any]:
    """A segment as the run report's comparison section shows it.

    That section prints an interval only as two numbers, so an interval open above (a new run
    that held, against a base that broke) goes into the note instead; comparison.json keeps
    the bounds as they are.
    """
    entry = seg.to_dict()
    if seg.ratio_low is not None and seg.ratio_high is None:
        entry["ratio_low"] = None
        bound = f"ratio at least {seg.ratio_low:.3f} (interval open above)"
        entry["note"] = "; ".join(filter(None, [seg.note, bound]))
    return entry


def _resolved(runs: Sequence[SideRun]) -> list[SideRun]:
    return [SideRun(r.path.resolve(), r.summary) for r in runs]


def _embed(run: SideRun, embedded: dict[str, Any], say: Say) -> bool:
    """Re-publish a new run's report with the comparison section; False when it has no steps.

    publish() re-analyses the stored steps; a run folder without them (a summary written by
    another tool) keeps its summary and report as they are rather than losing its results.
    """
    from breakpoint.output.publish import publish

    if not load_run(run.path).steps:
        return False
    try:
        report = publish(run.path, comparison=embedded)
    except StoreError as exc:
        say(f"warning: {run.path.name}: report not updated with the comparison ({exc})")
        return True
    say(f"report updated: {report}")  # publish() re-indexed the run
    return True


# --------------------------------------------------------------------------------------------
# history


def _history_rows(
    runs: Sequence[Any], profiles: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    headers = ["time", "label", "run id", "status", "first to break", *profiles]
    rows = []
    for run in runs:
        breaks = {b.profile: b.to_dict() for b in run.breaks}
        status = run.status or "?"
        if not run.has_summary:
            status += " (unpublished)"
        rows.append(
            [
                _fmt_when(run.created_at),
                run.label,
                run.run_id,
                status,
                run.first_to_break or ("–" if run.has_summary else ""),
                *(_fmt_break(breaks.get(p)) if run.has_summary else "" for p in profiles),
            ]
        )
    return headers, rows


def run_history(*, out_dir: Path, html_path: Path | None = None, say: Say = print) -> None:
    """Print every stored run with each segment's break; optionally write a trend report."""
    runs = indexed_runs(out_dir)
    profiles = list(dict.fromkeys(b.profile for r in runs for b in r.breaks))
    if not runs:
        say(f"no runs under {out_dir} (run `breakpoint demo` or `breakpoint run` first)")
    else:
        headers, rows = _history_rows(runs, profiles)
        for line in _table(headers, rows, right=set(range(5, 5 + len(profiles)))):
            say(line)
        if any(r.breaks and any(b.label == "extrapolated" for b in r.breaks) for r in runs):
            say("* extrapolated beyond the last measured step; ≥: held up to the cap")
    if html_path is None:
        return
    trend = history([r.as_summary() for r in runs if r.has_summary])
    charts = [
        {
            "profile": profile,
            "points": points,
            "svg": Markup(trend_chart(profile, points, plots.PALETTE[i % len(plots.PALETTE)])),
        }
        for i, (profile, points) in enumerate(trend.items())
    ]
    headers, rows = _history_rows(runs, profiles)
    html = _ENV.get_template("history.html.j2").render(
        out_dir=str(out_dir),
        generated_at=time.time(),
        runs=runs,
        headers=headers,
        rows=rows,
        charts=charts,
        version=__version__,
    )
    try:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"{html_path}: cannot write the trend report: {exc.strerror}") from None
    say(str(html_path))  # last, like `run` and `demo`: scripts read the path from it
