"""`breakpoint report`, `compare`, `check` and `history`: commands on stored runs, sending no load.

They import the output layer only, never locust or gevent (docs/design.md#code-layout).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import click

from breakpoint.analysis.roadmap import RoadmapAsked
from breakpoint.cli.options import echo, out_option, roadmap_options
from breakpoint.errors import UsageError

# GitHub Actions names a Markdown file here; when set, compare and check append their summary.
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
junit_option = click.option(
    "--junit",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write JUnit XML to this file (one test case per segment).",
)


def _step_summary() -> Path | None:
    value = os.environ.get(STEP_SUMMARY_ENV, "").strip()
    return Path(value) if value else None


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@roadmap_options
def report(run_dir: Path, expected_peak: float | None, target_multiplier: float | None) -> None:
    """Re-render the report of a stored run (complete or partial)."""
    from breakpoint.output.publish import publish

    echo(str(publish(run_dir, roadmap=RoadmapAsked(expected_peak, target_multiplier))))


@click.command()
@click.argument("base")
@click.argument("new")
@out_option("Reports folder holding the runs.")
@click.option("--force", is_flag=True, help="Compare runs even if their settings differ.")
@click.option(
    "--noise-band",
    type=click.FloatRange(0, 1),
    default=None,
    help="Relative change treated as noise (default max(3%, 2 x A/A spread)).",
)
@junit_option
def compare(
    base: str,
    new: str,
    out_dir: Path,
    force: bool,
    noise_band: float | None,
    junit: Path | None,
) -> None:
    """Compare breaking points of two runs or labels; exit 3 on a regression."""
    from breakpoint.output.comparison import run_compare

    code = run_compare(
        base,
        new,
        out_dir=out_dir,
        force=force,
        noise_band=noise_band,
        junit=junit,
        step_summary=_step_summary(),
        say=echo,
    )
    raise SystemExit(code)


def _requirements(specs: tuple[str, ...]) -> dict[str, float]:
    """--require SEGMENT=MULT options as {segment: multiplier}; UsageError naming the bad one."""
    required: dict[str, float] = {}
    for spec in specs:
        segment, sep, value = spec.partition("=")
        segment = segment.strip()
        try:
            multiplier = float(value) if sep and segment else math.nan
        except ValueError:
            multiplier = math.nan
        if not (math.isfinite(multiplier) and multiplier > 0):
            raise UsageError(
                f"--require {spec}: expected SEGMENT=MULT with a multiplier > 0 "
                "(e.g. --require android-lowend-3g=5)"
            )
        if segment in required:
            raise UsageError(f"--require {segment}: given twice; keep one")
        required[segment] = multiplier
    return required


@click.command()
@click.argument("run_or_label")
@click.option(
    "--require",
    "requires",
    multiple=True,
    metavar="SEGMENT=MULT",
    help="The segment must break at or above MULT (repeatable; overrides a profile's min_break).",
)
@junit_option
@out_option("Reports folder holding the runs.")
def check(run_or_label: str, requires: tuple[str, ...], junit: Path | None, out_dir: Path) -> None:
    """Check required breaking points; exit 3 unless every one is shown to hold."""
    from breakpoint.output.gate import run_check

    required = _requirements(requires)
    code = run_check(
        run_or_label,
        required,
        out_dir=out_dir,
        junit=junit,
        step_summary=_step_summary(),
        say=echo,
    )
    raise SystemExit(code)


@click.command()
@out_option("Reports folder holding the runs.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write a trend report to this HTML file.",
)
def history(out_dir: Path, html_path: Path | None) -> None:
    """List stored runs and each segment's breaking point across releases."""
    from breakpoint.output.history import run_history

    run_history(out_dir=out_dir, html_path=html_path, say=echo)
