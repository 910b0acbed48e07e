"""Tests for the change points of `history`: which release moved a segment's breaking point
(analysis/changepoint.py, release_history.changes), on synthetic histories of seeded runs, and
how `history` shows them (text and trend page)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from test_compare import SEGMENT, summary, typed
from test_comparing import run_cli, write_run

from breakpoint.analysis.changepoint import ReleasePoint, change_points
from breakpoint.analysis.release_history import changes, history


def release_history(
    factors: list[float], *, runs: int = 3, cv: float = 0.04, half_width: float = 0.05, seed: int
) -> list[dict[str, object]]:
    """Summaries of len(factors) releases, `runs` runs each, the break 8X x factor with
    log-normal run-to-run noise, each run stating a ±half_width interval."""
    rng = np.random.default_rng(seed)
    out = []
    for r, factor in enumerate(factors):
        for i, value in enumerate(8.0 * factor * np.exp(rng.normal(0.0, cv, runs))):
            out.append(
                summary(
                    {SEGMENT: float(value)},
                    label=f"release-{r + 1}",
                    run_id=f"r{r + 1}-{i}",
                    created_at=1000.0 * r + i,
                    half_width=half_width,
                )
            )
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_one_real_drop_in_eight_releases_is_found_and_nothing_else(seed: int) -> None:
    """A 20% drop at release 6 of 8 (3 runs each, 4% run-to-run noise): that release, alone."""
    runs = release_history([1, 1, 1, 1, 1, 0.8, 0.8, 0.8], seed=seed)
    found = changes(typed(runs))
    assert list(found) == [SEGMENT]
    (change,) = found[SEGMENT]
    assert change.label == "release-6"
    assert change.index == 5 and history(typed(runs))[SEGMENT][5]["label"] == "release-6"
    assert 0.75 < change.ratio < 0.85


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_noise_alone_is_no_change(seed: int) -> None:
    """Eight releases of the same break, run-to-run noise only: no change point."""
    assert changes(typed(release_history([1.0] * 8, seed=10 + seed))) == {}


def test_a_run_interval_wide_enough_to_hold_the_shift_is_not_a_change() -> None:
    """Single runs: a 10% step is a change when each run states ±2%, not when each states ±25%."""
    logs = [math.log(8.0)] * 4 + [math.log(7.2)] * 4

    def series(half: float) -> list[ReleasePoint]:
        return [ReleasePoint(f"r{i}", (y,), (math.log1p(half),)) for i, y in enumerate(logs)]

    assert [c.index for c in change_points(series(0.02))] == [4]
    assert change_points(series(0.25)) == []


def test_runs_that_held_to_the_cap_are_left_out() -> None:
    """A release whose runs all held (a lower bound only) is neither a change nor a blocker."""
    runs = release_history([1, 1, 1, 0.7, 0.7, 0.7], seed=7)
    held = [summary({SEGMENT: None}, label="release-held", run_id="h", created_at=2500.0)]
    found = changes(typed([*runs, *held]))
    (change,) = found[SEGMENT]
    assert change.label == "release-4"


def test_history_prints_the_release_that_moved_a_break_and_marks_the_trend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`history` names the release and the move; the trend page marks it."""
    values = [9.6, 9.8, 9.7, 9.5, 6.9, 7.0, 6.8, 7.1]
    for n, value in enumerate(values):
        write_run(tmp_path, f"v{n + 1}", {"android-lowend-3g": value}, n=n, half_width=0.04)
    html = tmp_path / "trend.html"
    code, out, _ = run_cli(capsys, "history", "--out", str(tmp_path), "--html", str(html))
    assert code == 0
    (line,) = [ln for ln in out.splitlines() if ln.startswith("change:")]
    assert "android-lowend-3g: breaking point moved at v5" in line and "-28%" in line
    page = html.read_text()
    assert "breaking point moved at v5" in page and "changed here" in page


def test_history_says_no_change_without_claiming_more(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Level releases: `history` says no change point was found, beyond the run-to-run noise."""
    for n, value in enumerate([9.6, 9.8, 9.7]):
        write_run(tmp_path, f"v{n + 1}", {"android-lowend-3g": value}, n=n)
    code, out, _ = run_cli(capsys, "history", "--out", str(tmp_path))
    assert code == 0 and "no change point" in out and "change:" not in out
