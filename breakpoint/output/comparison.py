"""`breakpoint compare`: stored runs in, a verdict, comparison.json and comparison.html out.

Resolves each side's reference (a folder, a run id, or a label meaning all its runs), reads
their summaries through the typed reader (publishing a killed run first), checks they may be
compared (runs/summary.py), compares them (analysis/release.py), prints the table and verdict,
writes `compare-<base>-vs-<new>-<time>/` beside the runs and embeds the result in the new runs'
reports (docs/design.md#comparison). Never imports locust.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from markupsafe import Markup

from breakpoint import __version__
from breakpoint.analysis.release import Comparison, SegmentComparison, compare
from breakpoint.errors import StoreError, UsageError
from breakpoint.output.ci import append_step_summary, write_junit
from breakpoint.output.comparison_ci import junit_cases, summary_markdown
from breakpoint.output.comparison_view import (
    TABLE_HEADERS,
    TABLE_RIGHT,
    comparison_chart,
    held,
    stopped_early,
    table_rows,
    verdict_line,
)
from breakpoint.output.pages import ENV, table
from breakpoint.runs.store import RUN_FILE, STEPS_FILE, load_run, resolve_runs, write_json
from breakpoint.runs.summary import (
    SUMMARY_FILE,
    RunSummary,
    check_comparable,
    hosts_shown,
    read_summary,
)

Say = Callable[[str], None]

# Version of comparison.json; bump with a note when fields change.
# 1: first version (Comparison.to_dict() plus the refs, labels and each side's runs).
COMPARISON_SCHEMA = 1
COMPARISON_JSON = "comparison.json"
COMPARISON_HTML = "comparison.html"
# A run folder still written to this recently may belong to a search in progress: publishing it
# now would compare half a run. Longer than any sensible step (warm-up + hold + drain).
ACTIVE_RUN_S = 300.0
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class SideRun:
    """One run of one side of a comparison: its folder and its summary."""

    path: Path
    summary: RunSummary

    @property
    def run_id(self) -> str:
        return self.summary.run_id or self.path.name


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
        runs.append(SideRun(path, read_summary(path)))
    if not runs:
        raise StoreError(f"{ref!r}: none of its {len(paths)} runs can be compared (see above)")
    return runs


load_side = _load_side  # for `check`, which reads one side the same way


def _labels(ref: str, runs: Sequence[SideRun]) -> str:
    labels = list(dict.fromkeys(r.summary.label or "" for r in runs))
    return ", ".join(lb for lb in labels if lb) or ref


def _side_name(ref: str, runs: Sequence[SideRun]) -> str:
    return f"{_labels(ref, runs)} ({len(runs)} run{'s' if len(runs) != 1 else ''})"


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
        "label": s.label,
        "path": str(run.path),
        "created_at": s.created_at,
        "git_rev": s.git_rev,
        "status": s.status,
        "report": f"../{run.path.name}/report.html" if run.path.parent == out_dir else None,
        "segments": {
            seg.profile: None if seg.breaking is None else seg.breaking.to_dict()
            for seg in s.segments
        },
    }


@dataclass(frozen=True)
class _Request:
    """What `compare` was asked, and the runs it found on each side."""

    base_ref: str
    new_ref: str
    base: list[SideRun]
    new: list[SideRun]
    noise_band: float | None
    force: bool

    def summaries(self, side: str) -> list[RunSummary]:
        return [r.summary for r in (self.base if side == "base" else self.new)]


def run_compare(
    base: str,
    new: str,
    *,
    out_dir: Path,
    force: bool = False,
    noise_band: float | None = None,
    junit: Path | None = None,
    step_summary: Path | None = None,
    say: Say = print,
) -> int:
    """Compare the runs named by `base` and `new`; returns the exit code (0, or 3 on regression)."""
    sides = _Request(
        base,
        new,
        _load_side(out_dir, base, "base", say),
        _load_side(out_dir, new, "new", say),
        noise_band,
        force,
    )
    shared = {r.path.resolve() for r in sides.base} & {r.path.resolve() for r in sides.new}
    if shared:
        names = ", ".join(sorted(p.name for p in shared))
        raise UsageError(f"run {names} is on both sides of the comparison: compare other runs")
    base_runs, new_runs = sides.summaries("base"), sides.summaries("new")
    reasons = check_comparable(base_runs, new_runs, force=force)
    comparison = compare(base_runs, new_runs, noise_band=noise_band)
    comparison = replace(comparison, warnings=(*reasons, *comparison.warnings))

    say(f"base: {_side_name(base, sides.base)}   new: {_side_name(new, sides.new)}")
    say(hosts_shown(base_runs, new_runs))
    rows = table_rows(comparison, base_runs, new_runs)
    for line in table(TABLE_HEADERS, rows, right=TABLE_RIGHT):
        say(line)
    warnings = [
        *comparison.warnings,
        *stopped_early("base", base_runs),
        *stopped_early("new", new_runs),
    ]
    for warning in warnings:
        say(f"warning: {warning}")
    for seg in comparison.segments:
        if seg.note:
            say(f"note: {seg.profile}: {seg.note}")
    say(verdict_line(comparison))

    folder = _new_folder(out_dir, base, new)
    _write_outputs(folder, out_dir, sides, comparison, warnings)
    embedded = {
        **comparison.to_dict(),
        "segments": [_for_report(seg) for seg in comparison.segments],
        "warnings": warnings,
        "base_label": _labels(base, sides.base),
        "folder": str(folder),
    }
    not_updated = [run.path.name for run in sides.new if not _embed(run, embedded, say)]
    if not_updated:
        say(
            f"note: no stored steps in {', '.join(not_updated)}: "
            "the comparison is not embedded in their reports"
        )
    if junit is not None:
        write_junit(
            junit,
            f"breakpoint compare {base} vs {new}",
            junit_cases(comparison),
            classname="breakpoint.compare",
        )
        say(f"junit: {junit}")
    if step_summary is not None:
        append_step_summary(step_summary, summary_markdown(comparison, base_runs, new_runs))
    say(f"comparison report: {folder / COMPARISON_HTML}")
    say(str(folder))
    return comparison.exit_code()


def _write_outputs(
    folder: Path,
    out_dir: Path,
    sides: _Request,
    comparison: Comparison,
    warnings: list[str],
) -> None:
    """comparison.json and comparison.html in the comparison's folder."""
    out_dir_resolved = out_dir.resolve()
    document = {
        "schema": COMPARISON_SCHEMA,
        "created_at": time.time(),
        "base_ref": sides.base_ref,
        "new_ref": sides.new_ref,
        "base_label": _labels(sides.base_ref, sides.base),
        "new_label": _labels(sides.new_ref, sides.new),
        "noise_band_option": sides.noise_band,
        "targets": hosts_shown(sides.summaries("base"), sides.summaries("new")),
        "force": sides.force,
        **comparison.to_dict(),
        "warnings": warnings,
        "base_runs": [_run_entry(r, out_dir_resolved) for r in _resolved(sides.base)],
        "new_runs": [_run_entry(r, out_dir_resolved) for r in _resolved(sides.new)],
        "versions": {"breakpoint": __version__},
    }
    write_json(folder / COMPARISON_JSON, document)
    base_runs, new_runs = sides.summaries("base"), sides.summaries("new")
    html = ENV.get_template("comparison.html.j2").render(
        doc=document,
        comparison=comparison,
        warnings=warnings,
        held={
            seg.profile: {
                "base": held(base_runs, seg.profile),
                "new": held(new_runs, seg.profile),
            }
            for seg in comparison.segments
        },
        chart=Markup(comparison_chart(comparison, base_runs, new_runs))
        if comparison.segments
        else None,
    )
    (folder / COMPARISON_HTML).write_text(html, encoding="utf-8")


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
