"""The `breakpoint` command: the click group, and errors turned into exit codes.

Core code raises BreakpointError; `main()` prints it as one line and returns its exit status
(breakpoint.errors.ExitStatus). The commands live beside this module, one module per kind:
inspect (profiles, plan), run, stored (report, compare, history) and demo (demo, target).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from breakpoint import __version__
from breakpoint.cli.config import defaults_for
from breakpoint.cli.demo import demo, target
from breakpoint.cli.inspect import plan, profiles
from breakpoint.cli.run import run, worker_process
from breakpoint.cli.stored import check, compare, history, report
from breakpoint.cli.surge import surge
from breakpoint.errors import BreakpointError, ExitStatus


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="breakpoint")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Find where each user segment breaks under load, and whether a release moved it."""
    if ctx.invoked_subcommand == "run":
        # breakpoint.toml or pyproject.toml's [tool.breakpoint]; flags on the line win.
        ctx.default_map = {"run": defaults_for(run, Path.cwd())}


for command in (
    target,
    profiles,
    plan,
    run,
    surge,
    worker_process,
    report,
    demo,
    compare,
    check,
    history,
):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: returns the exit status instead of exiting (easy to test)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="breakpoint", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        return int(ExitStatus.USAGE)
    except click.UsageError as exc:
        exc.show()
        return int(ExitStatus.USAGE)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return int(ExitStatus.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except BreakpointError as exc:
        click.echo(f"breakpoint: error: {exc}", err=True)
        return int(exc.exit_status)
    except KeyboardInterrupt:
        click.echo("breakpoint: interrupted", err=True)
        return int(ExitStatus.INTERRUPTED)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BrokenPipeError:
        # Output piped into `head`: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitStatus.OK)
    return int(ExitStatus.OK)
