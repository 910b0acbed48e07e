"""Turn a stored run (complete or partial) into summary.json, summary.md and report.html.

Reads the run folder, analyses it (analysis/breaks.py), writes the three outputs beside the raw
step records, and updates the reports folder's run index (runs/index.py). Used at the end of
`run` and `demo`, by `breakpoint report RUN_DIR` and by `compare`. Never imports locust.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from breakpoint.analysis.breaks import analyse
from breakpoint.analysis.roadmap import (
    AS_STORED,
    RoadmapAsked,
    roadmap_settings,
    roadmap_summary,
)
from breakpoint.errors import StoreError
from breakpoint.output.digest import markdown
from breakpoint.output.report.render import render_html
from breakpoint.output.surge_publish import publish_surge
from breakpoint.plan.profiles import profile_from_dict
from breakpoint.plan.steps import Plan
from breakpoint.runs.index import update_index
from breakpoint.runs.signals_summary import signals_section
from breakpoint.runs.store import RUN_FILE, load_run, write_json
from breakpoint.runs.summary import SUMMARY_FILE, build_summary

REPORT_FILE = "report.html"
MARKDOWN_FILE = "summary.md"


def publish(
    run_dir: Path,
    *,
    comparison: dict[str, Any] | None = None,
    roadmap: RoadmapAsked = AS_STORED,
) -> Path:
    """Analyse the run in `run_dir` and write its outputs; returns the report's path.

    `roadmap` (peak and target the command line asked for) is kept in run.json, so that a
    later `breakpoint report` plans for the same unless asked otherwise."""
    stored = load_run(run_dir)
    info = dict(stored.info)
    if info.get("kind") == "surge":
        try:
            profiles = [profile_from_dict(d) for d in info["profiles"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{run_dir / 'run.json'}: malformed run settings ({exc})") from None
        report = publish_surge(
            run_dir, stored, profiles, report_file=REPORT_FILE, markdown_file=MARKDOWN_FILE
        )
        _index(run_dir)
        return report
    peak, target = roadmap_settings(info, roadmap)
    if roadmap.given:
        info["roadmap"] = {"expected_peak": peak, "target_multiplier": target}
        write_json(run_dir / RUN_FILE, info)
    try:
        plan = Plan.from_dict(dict(info["plan"]))
        profiles = [profile_from_dict(d) for d in info["profiles"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"{run_dir / 'run.json'}: malformed run settings ({exc})") from None
    # Steps during which the scenario's own code was failing measured nothing of the target.
    failing = set((info.get("scenario_errors") or {}).get("failed_steps") or ())
    steps = [s for s in stored.steps if s.index not in failing]
    analysis = analyse(steps, profiles, plan, seed=plan.seed)
    summary = build_summary(info, steps, analysis, plan, profiles, store_warnings=stored.warnings)
    summary["roadmap"] = roadmap_summary(
        analysis, summary["segments"], expected_peak=peak, target=target
    )
    # The server's own signals, when the run scraped any (docs/design.md#server-signals).
    signals = signals_section(run_dir, steps, analysis)
    if signals is not None:
        summary["signals"] = signals
        for seg in summary["segments"]:
            if seg["profile"] in signals["segments"]:
                seg["preceded_by"] = signals["segments"][seg["profile"]]
        summary["warnings"] += [
            {"kind": "metrics", "message": m, "segment": None, "step": None}
            for m in signals["warnings"]
        ]
    if comparison is not None:
        summary["comparison"] = comparison
    write_json(run_dir / SUMMARY_FILE, summary)
    (run_dir / MARKDOWN_FILE).write_text(markdown(summary), encoding="utf-8")
    html = render_html(
        info=info,
        summary=summary,
        steps=steps,
        analysis=analysis,
        profiles=profiles,
        max_multiplier=plan.max_multiplier,
        comparison=comparison,
    )
    report = run_dir / REPORT_FILE
    report.write_text(html, encoding="utf-8")
    _index(run_dir)
    return report


def _index(run_dir: Path) -> None:
    """Index the run in its reports folder, best effort.

    The index is a cache that catches up with the folders on its next sync, so no problem with
    it (update_index already swallows SQLite and OS errors) may fail a publish whose outputs are
    already written.
    """
    with contextlib.suppress(Exception):
        update_index(run_dir.parent, run_dir)
