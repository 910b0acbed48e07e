"""Tests for the release comparison: verdicts between releases on synthetic run summaries
(analysis/release.py), the history trend, and the comparability rule with the typed summary
reader (runs/summary.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakpoint.analysis.release import Comparison
from breakpoint.analysis.release import compare as compare_runs
from breakpoint.analysis.release_history import history as history_of
from breakpoint.errors import IncompatibleRunsError, StoreError
from breakpoint.runs.store import write_json
from breakpoint.runs.summary import (
    SUMMARY_FILE,
    BreakPoint,
    Fingerprint,
    RunSummary,
    differences,
    hosts_shown,
    read_summary,
)
from breakpoint.runs.summary import check_comparable as check_summaries

SEGMENT = "android-lowend-3g"
CAP = 20.0
HELD = None  # a break value meaning "not reached: held up to the cap"

FINGERPRINT = {
    "scenario": "a" * 64,
    "profiles": "b" * 64,
    "plan": "c" * 64,
    "target": "c=8 S=20ms http://127.0.0.1:8089",
    "model": "open 40rps",
    "emulation": True,
}


def summary(
    breaks: Mapping[str, float | None],
    *,
    label: str = "base",
    half_width: float = 0.05,
    run_id: str | None = None,
    created_at: float = 0.0,
    fingerprint: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One run's summary.json; a break of None held up to the cap (not_reached)."""
    segments = []
    for profile, value in breaks.items():
        if value is None:
            brk = {
                "multiplier": None,
                "low": CAP,
                "high": CAP,
                "label": "not_reached",
                "criterion": None,
            }
        else:
            brk = {
                "multiplier": value,
                "low": value * (1 - half_width),
                "high": value * (1 + half_width),
                "label": "bracketed",
                "criterion": "latency",
            }
        segments.append({"profile": profile, "break": brk})
    return {
        "schema": 1,
        "run_id": run_id or f"{label}-{created_at:g}",
        "label": label,
        "model": "open",
        "segments": segments,
        "fingerprint": {**FINGERPRINT, **(fingerprint or {})},
        "created_at": created_at,
        "git_rev": None,
    }


def typed(summaries: Sequence[Mapping[str, Any]]) -> list[RunSummary]:
    return [RunSummary.from_dict(s) for s in summaries]


def compare(
    base: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], **kw: Any
) -> Comparison:
    """The analysis's comparison of summary.json documents, read as the CLI reads them."""
    return compare_runs(typed(base), typed(new), **kw)


def check_comparable(
    base: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], **kw: Any
) -> list[str]:
    return check_summaries(typed(base), typed(new), **kw)


def history(summaries: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return history_of(typed(summaries))


def runs(values: Sequence[float | None], *, label: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Summaries of one segment, one run per value."""
    return [
        summary({SEGMENT: v}, label=label, run_id=f"{label}-{i}", **kwargs)
        for i, v in enumerate(values)
    ]


def noisy(center: float, n: int, *, cv: float = 0.04, seed: int = 1) -> list[float]:
    """n breaking points log-normally spread around center (seeded)."""
    rng = np.random.default_rng(seed)
    return [float(v) for v in center * np.exp(rng.normal(0.0, cv, n))]


def verdict_of(base: Sequence[float | None], new: Sequence[float | None], **kw: Any) -> Comparison:
    return compare(runs(base, label="base"), runs(new, label="new"), **kw)


@pytest.mark.parametrize(
    ("base", "new", "expected"),
    [
        pytest.param(noisy(10, 5, seed=1), noisy(7, 5, seed=2), "regression", id="drop-5-runs"),
        pytest.param(noisy(10, 5, seed=1), noisy(13, 5, seed=2), "improvement", id="rise-5-runs"),
        pytest.param(noisy(10, 8, seed=3), noisy(10, 8, seed=4), "no_change", id="aa-8-runs"),
        pytest.param([9.8, 10.0, 10.2], [8.9, 9.1, 9.0], "regression", id="10pct-drop-3-runs"),
        pytest.param([9.8, 10.0, 10.2], [10.1, 9.9, 10.0], "no_change", id="aa-3-runs"),
        pytest.param([10.0], [7.0], "regression", id="one-run-30pct-drop"),
        pytest.param([10.0], [13.0], "improvement", id="one-run-30pct-rise"),
        pytest.param([10.0], [9.7], "inconclusive", id="one-run-small-shift"),
        pytest.param([10.0, 10.4], [9.9, 10.2], "inconclusive", id="two-runs-overlapping"),
        pytest.param([HELD], [HELD], "no_change", id="both-held-to-cap"),
        pytest.param([HELD, HELD], [HELD], "no_change", id="all-held-to-cap"),
        pytest.param([HELD], [8.0], "regression", id="base-held-new-broke-low"),
        pytest.param([8.0], [HELD], "improvement", id="base-broke-low-new-held"),
        pytest.param([HELD], [19.5], "inconclusive", id="base-held-new-broke-near-cap"),
        pytest.param([HELD, 19.0, 19.6], noisy(8, 3), "regression", id="partly-held-vs-low"),
    ],
)
def test_segment_verdicts(base: list[float | None], new: list[float | None], expected: str) -> None:
    """Each synthetic pair of releases gets the verdict a careful analyst would give."""
    result = verdict_of(base, new)
    assert result.verdict == expected
    assert result.segments[0].verdict == expected
    assert result.exit_code() == (3 if expected == "regression" else 0)


def test_known_shift_has_small_p_value_and_ratio_interval() -> None:
    """A 30% drop over 5 runs a side is significant and its interval brackets the true ratio."""
    seg = verdict_of(noisy(10, 5, seed=1), noisy(7, 5, seed=2)).segments[0]
    assert seg.method == "bootstrap"
    assert seg.p_value is not None and seg.p_value < 0.05
    assert seg.ratio is not None and seg.ratio_low is not None and seg.ratio_high is not None
    assert seg.ratio_low < 0.7 < seg.ratio_high < 1.0
    assert seg.runs_needed is None


def test_aa_spread_sets_noise_band() -> None:
    """The noise band is max(3%, 2 x the between-run spread) estimated from the runs."""
    seg = verdict_of(noisy(10, 8, cv=0.06, seed=3), noisy(10, 8, cv=0.06, seed=4)).segments[0]
    assert seg.aa_spread is not None and 0.03 < seg.aa_spread < 0.1
    assert seg.noise_band == pytest.approx(2 * seg.aa_spread)
    tight = verdict_of([10.0, 10.0], [10.0, 10.0]).segments[0]
    assert tight.noise_band == pytest.approx(0.03)


@pytest.mark.parametrize(
    ("kwargs", "band"),
    [
        pytest.param({"noise_band": 0.5}, 0.5, id="explicit-band"),
        pytest.param({"aa_spread": 0.2}, 0.4, id="explicit-aa-spread"),
        pytest.param({"aa_spread": 0.001}, 0.03, id="floor-3pct"),
    ],
)
def test_explicit_band_overrides_estimate(kwargs: dict[str, float], band: float) -> None:
    """An explicit noise band or A/A spread replaces the one estimated from the runs."""
    seg = verdict_of(noisy(10, 5, seed=1), noisy(7, 5, seed=2), **kwargs).segments[0]
    assert seg.noise_band == pytest.approx(band)
    if band == 0.5:
        assert seg.verdict != "regression"  # a 30% drop sits inside a 50% band


def test_one_run_small_shift_says_how_many_runs_would_decide() -> None:
    """With one run a side a 3% shift is inconclusive and asks for more than one run."""
    seg = verdict_of([10.0], [9.7]).segments[0]
    assert seg.method == "run_intervals"
    assert seg.p_value is None
    assert seg.runs_needed is not None and seg.runs_needed > 1


def test_one_run_30pct_drop_with_5pct_intervals_is_regression() -> None:
    """A 30% drop lies far outside both ±5% run intervals, even widened by the noise band."""
    seg = verdict_of([10.0], [7.0]).segments[0]
    assert seg.verdict == "regression"
    assert seg.ratio == pytest.approx(0.7)
    assert seg.ratio_high is not None and seg.ratio_high < 1.0


def test_one_run_wide_intervals_hide_a_drop() -> None:
    """The same 30% drop is inconclusive when each run's own interval is ±25%."""
    base = runs([10.0], label="base", half_width=0.25)
    new = runs([7.0], label="new", half_width=0.25)
    seg = compare(base, new).segments[0]
    assert seg.verdict == "inconclusive"
    assert seg.runs_needed is not None and seg.runs_needed >= 2


def test_break_near_cap_asks_to_raise_the_cap() -> None:
    """A break at the cap cannot be settled by more runs, so runs_needed is None."""
    seg = verdict_of([HELD], [19.5]).segments[0]
    assert seg.method == "censored"
    assert seg.runs_needed is None
    assert "cap" in seg.note


def _stopped_at_2x(run: dict[str, Any]) -> None:
    """The run's last trusted step was 2X, far below its cap."""
    run["segments"][0]["break"]["low"] = 2.0


def _interrupted(run: dict[str, Any]) -> None:
    run["status"] = "interrupted"


def _steps_below_cap(run: dict[str, Any]) -> None:
    """Its steps never reached the cap (the break's bound is a fit's, beyond them)."""
    run["steps"] = [{"multiplier": m, "segments": {}} for m in (1.0, 2.0, 4.0)]


@pytest.mark.parametrize(
    "stop",
    [
        pytest.param(_stopped_at_2x, id="last-trusted-step-below-cap"),
        pytest.param(_interrupted, id="status-not-complete"),
        pytest.param(_steps_below_cap, id="steps-below-cap"),
    ],
)
def test_held_on_both_sides_but_stopped_short_is_inconclusive(stop: Any) -> None:
    """Runs that "held" only as far as they went are no evidence of no change."""
    base = runs([HELD], label="base")
    new = runs([HELD], label="new")
    for run in (*base, *new):
        run["max_multiplier"], run["status"] = CAP, "complete"
    stop(new[0])
    seg = compare(base, new).segments[0]
    assert seg.verdict == "inconclusive" and seg.method == "censored"
    assert "stopped short of their cap" in seg.note and "not evidence of no change" in seg.note
    assert seg.runs_needed is None and seg.ratio is None
    # The same runs held to the cap: no change.
    assert compare(base, runs([HELD], label="new")).segments[0].verdict == "no_change"


def test_a_held_run_counts_at_the_cap_not_at_a_fit_beyond_it() -> None:
    """A not_reached break whose fit bound lies beyond the cap is counted at the cap."""
    base, new = runs([HELD], label="base"), runs([8.0], label="new")
    base[0]["max_multiplier"], base[0]["status"] = CAP, "complete"
    base[0]["segments"][0]["break"].update(multiplier=3 * CAP, low=2 * CAP, high=5 * CAP)
    seg = compare(base, new).segments[0]
    assert seg.base_multiplier == pytest.approx(CAP)


def test_a_run_without_a_trusted_step_is_skipped_with_the_reason() -> None:
    """A not_reached break with no bound (nothing trusted was measured) is not a hold."""
    base, new = runs([HELD], label="base"), runs([8.0, 8.2], label="new")
    base[0]["max_multiplier"] = CAP
    base[0]["segments"][0]["break"].update(low=None, high=None)
    result = compare(base, new)
    assert result.segments == () and result.verdict == "inconclusive"
    assert any("no trusted step" in w for w in result.warnings)


def test_overall_regression_when_any_segment_regressed() -> None:
    """One regressed segment makes the whole comparison a regression (exit code 3)."""
    base = [summary({"a": 10.0, "b": 5.0}, label="base", run_id="b1")]
    new = [summary({"a": 10.0, "b": 3.0}, label="new", run_id="n1")]
    result = compare(base, new)
    assert {s.profile: s.verdict for s in result.segments}["b"] == "regression"
    assert result.verdict == "regression" and result.exit_code() == 3
    assert [s.profile for s in result.regressions] == ["b"]


def test_segments_on_one_side_only_are_reported() -> None:
    """A segment missing from one side is not compared and is named in the warnings."""
    base = [summary({"a": 10.0, "b": 5.0}, label="base", run_id="b1")]
    new = [summary({"a": 10.0, "c": 5.0}, label="new", run_id="n1")]
    result = compare(base, new)
    assert [s.profile for s in result.segments] == ["a"]
    assert result.only_base == ("b",) and result.only_new == ("c",)
    assert any("one side only" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("change", "word"),
    [
        pytest.param({"scenario": "d" * 64}, "scenario", id="scenario"),
        pytest.param({"profiles": "e" * 64}, "profiles", id="profiles"),
        pytest.param({"plan": "f" * 64}, "plan", id="plan"),
        pytest.param({"model": "closed 40 users"}, "load-model", id="model-settings"),
        pytest.param({"emulation": False}, "emulation", id="emulation"),
    ],
)
def test_incomparable_fingerprints_refused_unless_forced(change: dict[str, str], word: str) -> None:
    """Runs with another scenario, profiles, plan or model are refused unless forced."""
    base = runs([10.0], label="base")
    new = runs([10.0], label="new", fingerprint=change)
    with pytest.raises(IncompatibleRunsError, match=word):
        check_comparable(base, new)
    reasons = check_comparable(base, new, force=True)
    assert len(reasons) == 1 and word in reasons[0]
    assert differences(typed(base), typed(new)) == reasons


def test_a_different_target_is_shown_never_refused() -> None:
    """Base and candidate deployments differ in URL: the runs compare, and both hosts are named."""
    base = [{**runs([10.0], label="base")[0], "host": "http://127.0.0.1:8001"}]
    new = [
        {
            **runs([10.0], label="new", fingerprint={"target": "http://127.0.0.1:8002"})[0],
            "host": "http://127.0.0.1:8002",
        }
    ]
    assert check_comparable(base, new) == []
    shown = hosts_shown(typed(base), typed(new))
    assert "base http://127.0.0.1:8001" in shown and "new http://127.0.0.1:8002" in shown


def test_different_load_model_refused() -> None:
    """An open-model run is not comparable with a closed-model run."""
    base = runs([10.0], label="base")
    new = [{**runs([10.0], label="new")[0], "model": "closed"}]
    with pytest.raises(IncompatibleRunsError, match="load model"):
        check_comparable(base, new)


def test_missing_fingerprint_refused() -> None:
    """A run without a fingerprint cannot be checked, so it is refused unless forced."""
    base = runs([10.0], label="base")
    new = [{k: v for k, v in runs([10.0], label="new")[0].items() if k != "fingerprint"}]
    with pytest.raises(IncompatibleRunsError, match="no fingerprint"):
        check_comparable(base, new)
    assert compare(base, new).verdict == "inconclusive"


@pytest.mark.parametrize(
    ("n_base", "n_new"),
    [pytest.param(0, 1, id="no-base"), pytest.param(1, 0, id="no-new")],
)
def test_empty_side_refused_even_when_forced(n_base: int, n_new: int) -> None:
    """With no runs on a side there is nothing to compare, force or not."""
    with pytest.raises(IncompatibleRunsError, match=r"no (base|new) runs"):
        check_comparable(
            runs([10.0] * n_base, label="b"), runs([10.0] * n_new, label="n"), force=True
        )


def test_seeded_and_json_ready() -> None:
    """The same seed gives the same result, and to_dict() survives strict JSON encoding."""
    base, new = noisy(10, 4, seed=5), noisy(9, 4, seed=6)
    first, again = verdict_of(base, new, seed=7), verdict_of(base, new, seed=7)
    assert first == again
    for result in (first, verdict_of([HELD], [HELD]), verdict_of([HELD], [8.0])):
        encoded = json.loads(json.dumps(result.to_dict(), allow_nan=False))
        assert encoded["exit_code"] == result.exit_code()
        assert encoded["segments"][0]["profile"] == SEGMENT


MIRROR = {
    "regression": "improvement",
    "improvement": "regression",
    "no_change": "no_change",
    "inconclusive": "inconclusive",
}
break_values = st.one_of(st.floats(min_value=1.0, max_value=19.0), st.none())


@settings(max_examples=80, deadline=None)
@given(
    base=st.lists(break_values, min_size=1, max_size=6),
    new=st.lists(break_values, min_size=1, max_size=6),
    half_width=st.floats(min_value=0.0, max_value=0.3),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_swapping_sides_mirrors_the_verdict(
    base: list[float | None], new: list[float | None], half_width: float, seed: int
) -> None:
    """Swapping base and new flips regression and improvement and inverts the ratio."""
    b = runs(base, label="base", half_width=half_width)
    n = runs(new, label="new", half_width=half_width)
    forward = compare(b, n, seed=seed).segments[0]
    backward = compare(n, b, seed=seed).segments[0]
    assert backward.verdict == MIRROR[forward.verdict]
    assert backward.noise_band == forward.noise_band
    if forward.ratio is not None:
        assert backward.ratio == pytest.approx(1 / forward.ratio)


def test_history_orders_labels_in_time_and_pools_repeats() -> None:
    """History lists each segment's break per label in time order, pooling a label's repeats."""
    summaries = [
        summary({"a": 8.0}, label="2.3", run_id="r3", created_at=300.0),
        summary({"a": 10.0, "b": None}, label="2.1", run_id="r1", created_at=100.0),
        summary({"a": 9.0}, label="2.2", run_id="r2a", created_at=200.0),
        summary({"a": 4.0}, label="2.2", run_id="r2b", created_at=210.0),
    ]
    trend = history(summaries)
    assert [e["label"] for e in trend["a"]] == ["2.1", "2.2", "2.3"]
    pooled = trend["a"][1]
    assert pooled["runs"] == 2 and pooled["run_ids"] == ["r2a", "r2b"]
    assert pooled["multiplier"] == pytest.approx(6.0)
    assert pooled["low"] == pytest.approx(4.0 * 0.95) and pooled["high"] == pytest.approx(9.45)
    held = trend["b"][0]
    assert held["status"] == "not_reached" and held["multiplier"] is None
    assert held["cap"] == CAP and held["not_reached"] == 1


def test_emulation_off_against_on_is_named_in_the_refusal() -> None:
    """A calibration run without emulation is not compared with an emulated one, silently."""
    base = runs([10.0], label="base")
    new = runs([10.0], label="new", fingerprint={"emulation": False})
    assert differences(typed(base), typed(new)) == ["different emulation: base True vs new False"]
    assert differences(typed(base), typed(runs([9.0], label="new"))) == []


def test_summary_reader_types_what_readers_use(tmp_path: Path) -> None:
    """read_summary gives typed breaks, steps, fingerprint and status; malformed parts are None
    or left out rather than crashing a reader later."""
    document = summary({"a": 8.0, "b": None}, label="v1", run_id="r1")
    document.update(
        status="complete",
        max_multiplier=CAP,
        steps=[{"multiplier": 1, "generator_bound": False}, "junk", {"multiplier": "x"}],
    )
    document["segments"] += [{"profile": "c", "break": "junk"}, {"no": "profile"}]
    folder = tmp_path / "r1"
    folder.mkdir()
    write_json(folder / SUMMARY_FILE, {k: v for k, v in document.items() if k != "run_id"})
    run = read_summary(folder)
    assert run.run_id == "r1" and run.label == "v1" and run.status == "complete"
    assert run.max_multiplier == CAP and run.fingerprint == Fingerprint.from_dict(FINGERPRINT)
    assert [s.multiplier for s in run.steps] == [1.0, None]
    assert [s.profile for s in run.segments] == ["a", "b", "c"]
    assert run.segments[0].breaking == BreakPoint(
        8.0, 8.0 * 0.95, 8.0 * 1.05, "bracketed", "latency"
    )
    assert run.segments[1].breaking is not None and run.segments[1].breaking.label == "not_reached"
    assert run.segments[2].breaking is None


@pytest.mark.parametrize("schema", [None, 2, "1"])
def test_summary_of_another_schema_is_refused_with_the_fix(tmp_path: Path, schema: Any) -> None:
    """A summary this version cannot read names its file and how to rewrite it."""
    write_json(tmp_path / SUMMARY_FILE, {**summary({"a": 8.0}), "schema": schema})
    with pytest.raises(StoreError, match=r"summary\.json: schema .*`breakpoint report"):
        read_summary(tmp_path)
