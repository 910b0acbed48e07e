"""`breakpoint report`, `compare` and `history`: commands on stored runs, sending no load.

They import the output layer only, never locust or gevent (docs/design.md#code-layout).
"""

from __future__ import annotations

from pathlib import Path

import click

from breakpoint.cli.options import echo, out_option


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir: Path) -> None:
    """Re-render the report of a stored run (complete or partial)."""
    from breakpoint.output.publish import publish

    echo(str(publish(run_dir)))


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
def compare(base: str, new: str, out_dir: Path, force: bool, noise_band: float | None) -> None:
    """Compare breaking points of two runs or labels; exit 3 on a regression."""
    from breakpoint.output.comparison import run_compare

    code = run_compare(base, new, out_dir=out_dir, force=force, noise_band=noise_band, say=echo)
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
