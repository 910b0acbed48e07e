"""`breakpoint demo` and `breakpoint target`: the embedded target of known capacity, alone or
with a whole search against it (docs/design.md#ground-truths).

Both import the demo layer (and with it the load layer) only inside their bodies.
"""

from __future__ import annotations

from pathlib import Path

import click

from breakpoint.cli.options import echo, out_option


@click.command()
@click.option(
    "--workers",
    type=click.IntRange(1, 512),
    default=8,
    show_default=True,
    help="Workers serving requests (c).",
)
@click.option(
    "--service-ms",
    type=click.FloatRange(0, 60_000, min_open=True),
    default=20.0,
    show_default=True,
    help="Mean service time per request (S).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8089,
    show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--max-queue",
    type=click.IntRange(0, None),
    default=None,
    help="Answer 503 when more requests than this wait for a worker.",
)
@click.option(
    "--sync-workers",
    is_flag=True,
    help="Hold a worker until its response is written (gunicorn sync): slow readers hold workers.",
)
@click.option(
    "--distribution",
    type=click.Choice(["exponential", "constant"]),
    default="exponential",
    show_default=True,
    help="Service time distribution (exponential: an M/M/c queue).",
)
@click.option(
    "--contention",
    type=click.FloatRange(0, 10),
    default=0.0,
    show_default=True,
    help="Each request in service slows the others' service by this fraction (USL's sigma).",
)
def target(
    workers: int,
    service_ms: float,
    port: int,
    seed: int,
    max_queue: int | None,
    sync_workers: bool,
    distribution: str,
    contention: float,
) -> None:
    """Run the embedded demo target (an M/M/c service) on 127.0.0.1 until stopped.

    `breakpoint demo`'s target is `--workers 128 --service-ms 80 --distribution constant
    --contention 0.057 --sync-workers`."""
    from breakpoint.demo.target import TargetConfig, run_target

    config = TargetConfig(
        workers=workers,
        service_ms=service_ms,
        port=port,
        seed=seed,
        max_queue=max_queue,
        sync_workers=sync_workers,
        contention=contention,
        distribution="constant" if distribution == "constant" else "exponential",
    )
    raise SystemExit(run_target(config, out=echo))


@click.command()
@click.option("--quick", is_flag=True, help="A shorter plan (about 2.5 minutes).")
@out_option("Reports folder.")
@click.option(
    "--service-ms",
    type=click.FloatRange(0, 10_000, min_open=True),
    default=80.0,
    show_default=True,
    help="The demo target's mean service time (a slower 'release').",
)
@click.option("--label", default="demo", show_default=True)
def demo(quick: bool, out_dir: Path, service_ms: float, label: str) -> None:
    """Start the embedded target, find where each default segment breaks, write the report."""
    from breakpoint.demo.run import run_demo
    from breakpoint.output.live import make_progress

    with make_progress() as view:
        path = run_demo(
            quick=quick,
            out_dir=out_dir,
            service_ms=service_ms,
            label=label,
            say=echo,
            progress=view,
        )
    from breakpoint.output.signals_view import run_lines

    for line in run_lines(path.parent):  # what preceded each break (the target's /metrics)
        echo(f"server metrics: {line}")
    echo(str(path))
