"""Who breaks first in `breakpoint demo`, run after run: how steady is the demo's finding?

Runs `demo --quick` (or the full demo with --full) N times with seeds 1..N, each in a fresh
reports folder, and prints per run: the segment named first, android-lowend-3g's and
desktop-broadband's breaks with their 95% intervals and criteria, whether 3G's interval is
apart from desktop's and from the next segment's, and what parsing the target's /metrics page
cost (the demo scrapes it once a second). Then the counts over the runs. Load goes only to the
embedded target each run starts on 127.0.0.1.

    .venv/bin/python benchmarks/demo_order.py [--runs 4] [--full] [--write-readme]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from _readme import write_section

from breakpoint.demo.run import demo_target_config, run_demo

LOW, DESK = "android-lowend-3g", "desktop-broadband"
HEADING = "## Who breaks first in the demo (demo_order.py)"


def _span(b: dict[str, Any]) -> str:
    if b.get("multiplier") is None:
        return f"{b.get('label')}"
    return f"{b['multiplier']:.2f}X [{b['low']:.2f}-{b['high']:.2f}] {b['criterion']}"


def one(seed: int, full: bool, keep: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = keep if keep is not None else Path(tmp)
        started = time.monotonic()
        report = run_demo(quick=not full, out_dir=out, say=lambda _: None, seed=seed)
        took = time.monotonic() - started
        summary = json.loads((report.parent / "summary.json").read_text())
    breaks = {s["profile"]: s["break"] for s in summary["segments"]}
    low, desk = breaks[LOW], breaks[DESK]
    lead = summary.get("first_lead") or {}
    per_url = (summary.get("signals") or {}).get("scrapes", {}).get("per_url", [])
    parse = per_url[0].get("parse_ms") if per_url else None
    below = (
        low.get("multiplier") is not None
        and desk.get("multiplier") is not None
        and low["multiplier"] < desk["multiplier"]
    )
    apart_desk = low.get("high") is not None and desk.get("low") is not None
    apart_desk = apart_desk and low["high"] <= desk["low"]  # as analysis/why.py
    return {
        "seed": seed,
        "took_s": took,
        "first": summary.get("first_to_break"),
        "low": _span(low),
        "desk": _span(desk),
        "below": below,
        "apart_from_desktop": apart_desk,
        "apart_from_next": bool(lead.get("apart")) and summary.get("first_to_break") == LOW,
        "parse_ms": parse,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--full", action="store_true", help="the full demo, not --quick")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs in this folder")
    args = parser.parse_args()
    started = time.monotonic()
    rows = []
    seeds = range(args.first_seed, args.first_seed + args.runs)
    for seed in seeds:
        row = one(seed, args.full, args.keep)
        rows.append(row)
        parse = row["parse_ms"] or {}
        mean, most = parse.get("mean") or float("nan"), parse.get("max") or float("nan")
        print(
            f"seed {seed}: first {row['first']}; 3G {row['low']}; desktop {row['desk']}; "
            f"3G below desktop {row['below']}, apart from desktop {row['apart_from_desktop']}, "
            f"apart from the next {row['apart_from_next']}; /metrics parse "
            f"{mean:.2f} ms mean, {most:.2f} ms max; {row['took_s']:.0f} s",
            flush=True,
        )
    n = len(rows)
    lines = [
        f"3G named first: {sum(r['first'] == LOW for r in rows)}/{n}",
        f"3G's break below desktop's: {sum(r['below'] for r in rows)}/{n}",
        f"3G's interval apart from desktop's: {sum(r['apart_from_desktop'] for r in rows)}/{n}",
        f"3G first and apart from the next segment: {sum(r['apart_from_next'] for r in rows)}/{n}",
    ]
    for line in lines:
        print(line)
    if args.write_readme:
        mode = "the full demo" if args.full else "`demo --quick`"
        text = [
            HEADING,
            "",
            f"`python benchmarks/demo_order.py --runs {n}{' --full' if args.full else ''}"
            f"{f' --first-seed {args.first_seed}' if args.first_seed != 1 else ''}` "
            f"({time.strftime('%Y-%m-%d')}, 2 CPUs; took {time.monotonic() - started:.0f} s). "
            f"{mode} with seeds {seeds[0]}..{seeds[-1]}, each against its own embedded target "
            f"({demo_target_config().describe()}), objectives page view p95 < 6 s and the API's "
            "p95 < 1.5 s.",
            "",
            "| seed | first | android-lowend-3g | desktop-broadband | /metrics parse (mean, max) |",
            "|---|---|---|---|---|",
        ]
        for r in rows:
            p = r["parse_ms"] or {}
            text.append(
                f"| {r['seed']} | {r['first']} | {r['low']} | {r['desk']} | "
                f"{p.get('mean') or float('nan'):.2f} ms, {p.get('max') or float('nan'):.2f} ms |"
            )
        text += ["", *[f"- {line}" for line in lines]]
        write_section(Path(__file__).with_name("README.md"), HEADING, "\n".join(text) + "\n")


if __name__ == "__main__":
    main()
