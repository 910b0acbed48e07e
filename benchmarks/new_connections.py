"""How many of a slow segment's requests open a new emulated connection, step by step.

A person's connection should follow the scenario (its think time), not the load generator's
pool of users (docs/design.md#connections-per-arrival). This counts the new connections the
emulator opens (load/emulate.py `_Connection`, not the kept-alive one an arrival is handed) in
each step's measured window of a short search: android-lowend-3g alone, the
shop's pages and searches (tests/scenarios/shop_api.py), the demo's target, 16 req/s at 1X,
whole steps 1X to 4X. It prints per step the requests, the new connections, and the segment's
mean network time per request, next to the network model's times for a warm and a new
connection (docs/design.md#field-notes). Load goes only to the embedded target it starts on
127.0.0.1.

    .venv/bin/python benchmarks/new_connections.py [--baseline-rps 16] [--write-readme]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _readme import write_section

from breakpoint.load.process import patch_early

patch_early()  # gevent's monkey-patching before anything else imports the network modules

from breakpoint.analysis.search import Search  # noqa: E402
from breakpoint.demo.run import DEMO_OBJECTIVES, demo_target_config  # noqa: E402
from breakpoint.demo.target import start_target_process  # noqa: E402
from breakpoint.load import emulate  # noqa: E402
from breakpoint.load.run import execute  # noqa: E402
from breakpoint.load.settings import RunSettings  # noqa: E402
from breakpoint.plan import netmodel  # noqa: E402
from breakpoint.plan.objectives import apply as apply_objectives  # noqa: E402
from breakpoint.plan.profiles import resolve_profiles  # noqa: E402
from breakpoint.plan.steps import Plan  # noqa: E402

HEADING = "## New connections of a slow segment (new_connections.py)"
SCENARIO = Path(__file__).resolve().parents[1] / "tests" / "scenarios" / "shop_api.py"
SEGMENT = "android-lowend-3g"
CREATED: list[float] = []


ARRIVING = [False]  # inside _Emulator.arrive: the connection the person already holds


class _Counted(emulate._Connection):
    """The emulator's connection, noting when each new one (set-up round trips) is created."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if not ARRIVING[0]:
            CREATED.append(time.time())


def _arrive(self: emulate._Emulator, think_s: float) -> None:
    ARRIVING[0] = True
    try:
        _ARRIVE(self, think_s)
    finally:
        ARRIVING[0] = False


_ARRIVE = emulate._Emulator.arrive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-rps", type=float, default=16.0)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    emulate._Connection = _Counted  # type: ignore[misc]
    emulate._Emulator.arrive = _arrive  # type: ignore[method-assign]
    (profile,) = apply_objectives(resolve_profiles([SEGMENT]), DEMO_OBJECTIVES)
    plan = Plan(
        model="open",
        baseline=args.baseline_rps,
        max_multiplier=4.0,
        linear_until=4.0,
        warmup_s=1.0,
        hold_s=6.0,
        refine_levels=0,
        seed=1,
    )
    # The shop's mix: 6 pages (about 2.2 KB) to 3 searches (about 8.4 KB).
    mix = [(6, 2200), (3, 8400)]

    def model_ms(new: bool) -> float:
        times = [netmodel.predict(profile, 120, b, new_connection=new).total_ms for _, b in mix]
        return sum(w * t for (w, _), t in zip(mix, times, strict=True)) / sum(w for w, _ in mix)

    with tempfile.TemporaryDirectory() as tmp, start_target_process(demo_target_config()) as t:
        settings = RunSettings(
            scenario=SCENARIO,
            host=t.url,
            plan=plan,
            profiles=(profile,),
            label="connections",
            out_dir=Path(tmp),
            emulate=True,
        )
        run_dir = execute(settings, Search.for_profiles(plan, [profile], emulate=True))
        rows = []
        for line in (run_dir / "steps.jsonl").read_text().splitlines():
            step = json.loads(line)
            if step.get("kind") != "segment_step" or not step.get("final"):
                continue
            start = step["started_at"] + step["warmup_s"]
            new = sum(1 for c in CREATED if start <= c < start + step["measured_s"])
            rows.append((step["multiplier"], step["requests"], new, step["parts_ms"]["network"]))
    header = (
        f"{SEGMENT} alone, {args.baseline_rps:g} req/s at 1X, the demo's target; the network "
        f"model: {model_ms(False):.0f} ms on a warm connection, {model_ms(True):.0f} ms on a new "
        "one (the shop's mix of pages and searches)"
    )
    table = [
        "| step | requests in the window | new connections | share | mean network time |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {m:g}X | {n} | {new} | {new / n:.0%} | {net:.0f} ms |"
            for m, n, new, net in rows
            if n
        ),
    ]
    print(header)
    print("\n".join(table))
    if args.write_readme:
        text = [
            HEADING,
            "",
            f"`python benchmarks/new_connections.py` ({time.strftime('%Y-%m-%d')}, 2 CPUs). "
            f"{header}.",
            "",
            *table,
        ]
        write_section(Path(__file__).with_name("README.md"), HEADING, "\n".join(text) + "\n")


if __name__ == "__main__":
    main()
