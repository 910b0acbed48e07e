"""Release-over-release comparison of breaking points: run summaries in, verdicts out.

Pure (numpy and scipy only; no file I/O, no locust). The input is the contents of each run's
`summary.json` (DESIGN §11); the output is a `Comparison` holding one `SegmentComparison` per
segment present on both sides, an overall verdict and the CLI exit code (DESIGN §7).

Statistical choices (the unit is a whole run, never a request):

* Breaking points are compared in log space. The ratio new/base is the ratio of geometric means
  over runs, and a noise band b means "ratios between 1/(1+b) and 1+b". Swapping the sides
  therefore inverts the ratio exactly and mirrors every verdict.
* A/A spread s: the standard deviation of log(breaking point) between runs within a side,
  pooled over both sides (ddof=1; only sides with >= 2 uncensored runs contribute). For spreads
  of a few percent it equals the coefficient of variation of one run's breaking point. It can be
  given instead (`aa_spread`, e.g. from a dedicated A/A campaign). Noise band: `noise_band` if
  given, else max(3%, 2 s), else 3% when s cannot be estimated.
* Bootstrap path (>= 2 runs on both sides, nothing censored): a seeded percentile bootstrap over
  runs (each side resampled on its own) gives a 95% interval of the ratio, and Mann-Whitney U
  (two-sided) a p-value when both sides have >= 3 runs. Regression: the ratio is below the band,
  the interval lies below 1, and the evidence is statistically supported: p < 0.05 when the
  sample sizes let the exact test get there (not at 3 vs 3 or 3 vs 4, whose smallest p is 0.1
  and 0.057), otherwise the run-interval rule below. (With so few runs the bootstrap interval
  and the estimated band are too optimistic: in A/A simulations 2 vs 2 runs gave 9% false
  regressions on the bootstrap alone.) No change: the interval lies inside the band. Anything
  else is inconclusive.
* Run-interval path (a single run on a side): each run's own interval (low, high), widened by
  the band on both ends, stands in for the spread between runs. Regression: every new run's
  widened interval lies below every base run's. One run a side never proves "no change".
* Censored path (any not_reached break): a run that held to the cap is the interval [cap, inf);
  the run-interval rule then applies, and runs that all held on both sides are "no change".
  A run that stopped short of its cap (summary `status` not "complete", or its last trusted
  step below `max_multiplier`) held only as far as it went: it counts as [that step, inf), and
  runs that "held" on both sides with any such run among them are "inconclusive", not "no
  change" (two runs stopped at 1X prove nothing about 10X).
* runs_needed (inconclusive verdicts only) is the usual two-sample size for a difference of
  means in log space, n = 2 (z_0.975 + z_0.80)^2 s^2 / delta^2 runs per side, where delta is the
  observed shift when it lies beyond the band (to show it is real) or the distance from the
  shift to the band edge when it lies inside (to show it stays inside); at least 4 to show a
  change, the fewest runs a side at which the rank test can reach 0.05. With one run a side, s
  comes from the widened run intervals read as 95% intervals. None when more runs cannot decide
  (a break at the cap: raise the cap instead).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from breakpoint.errors import ExitStatus, IncompatibleRunsError

Verdict = Literal["regression", "improvement", "no_change", "inconclusive"]
Method = Literal["bootstrap", "run_intervals", "censored"]

MIN_NOISE_BAND = 0.03
AA_BAND_FACTOR = 2.0
ALPHA = 0.05  # two-sided level of the interval and of the rank test
POWER = 0.80  # for runs_needed
MIN_RUNS_FOR_RANK_TEST = 3
BOOTSTRAP_RESAMPLES = 4000
MAX_RUNS_NEEDED = 1000  # beyond this, more runs are not a practical answer
_Z_INTERVAL = float(stats.norm.ppf(1 - ALPHA / 2))
_Z_POWER = float(stats.norm.ppf(POWER))

# Fingerprint fields that must agree, with the words used in the refusal.
_FINGERPRINT_FIELDS = (
    ("scenario", "scenario"),
    ("profiles", "profiles"),
    ("plan", "plan"),
    ("target", "target"),
    ("model", "load-model settings"),
)
_MISSING = "missing"


@dataclass(frozen=True)
class SegmentComparison:
    """The verdict for one segment, with the numbers that support it."""

    profile: str
    verdict: Verdict
    method: Method
    ratio: float | None  # geometric mean new / geometric mean base
    ratio_low: float | None  # interval of the ratio; None when unbounded
    ratio_high: float | None
    p_value: float | None  # Mann-Whitney U, two-sided; None below 3 runs a side
    noise_band: float  # relative, e.g. 0.03
    aa_spread: float | None  # log-sd between runs (~ coefficient of variation)
    base_multiplier: float | None
    new_multiplier: float | None
    base_runs: int
    new_runs: int
    runs_needed: int | None  # runs per side that would decide; inconclusive only
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """Base runs against new runs: per-segment verdicts and the overall one."""

    verdict: Verdict
    segments: tuple[SegmentComparison, ...]
    base_run_ids: tuple[str, ...]
    new_run_ids: tuple[str, ...]
    base_labels: tuple[str, ...]
    new_labels: tuple[str, ...]
    only_base: tuple[str, ...] = ()  # segments measured on one side only
    only_new: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    seed: int = 0

    @property
    def regressions(self) -> tuple[SegmentComparison, ...]:
        return tuple(s for s in self.segments if s.verdict == "regression")

    def exit_code(self) -> int:
        return int(ExitStatus.REGRESSION if self.verdict == "regression" else ExitStatus.OK)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code(),
            "segments": [s.to_dict() for s in self.segments],
            "base_run_ids": list(self.base_run_ids),
            "new_run_ids": list(self.new_run_ids),
            "base_labels": list(self.base_labels),
            "new_labels": list(self.new_labels),
            "only_base": list(self.only_base),
            "only_new": list(self.only_new),
            "warnings": list(self.warnings),
            "seed": self.seed,
        }


# --------------------------------------------------------------------------------------------
# Comparability


def _run_name(run: Mapping[str, Any]) -> str:
    return str(run.get("run_id") or run.get("label") or "?")


def _short(value: Any) -> str:
    if value is None:
        return "none"
    text = str(value)
    # Fingerprints are long hex digests; 12 characters identify them in a one-line message.
    return text[:12] if len(text) > 12 and text.isalnum() else text


def _distinct(values: Iterable[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def check_comparable(
    base: Sequence[Mapping[str, Any]],
    new: Sequence[Mapping[str, Any]],
    *,
    force: bool = False,
) -> list[str]:
    """Reasons the runs are not comparable; raise IncompatibleRunsError with them unless force.

    An empty side is refused even with force: there is nothing to compare.
    """
    sides = (("base", base), ("new", new))
    empty = [f"no {side} runs to compare" for side, runs in sides if not runs]
    if empty:
        raise IncompatibleRunsError("; ".join(empty))

    reasons: list[str] = []
    no_fingerprint = [
        _run_name(run)
        for _, runs in sides
        for run in runs
        if not isinstance(run.get("fingerprint"), Mapping)
    ]
    if no_fingerprint:
        reasons.append(
            f"no fingerprint in run {', '.join(no_fingerprint)}: cannot check that the runs used "
            "the same scenario, profiles, plan and target"
        )

    def values(runs: Sequence[Mapping[str, Any]], getter: Any) -> list[Any]:
        return _distinct(getter(run) for run in runs)

    def fingerprint_value(key: str) -> Any:
        def get(run: Mapping[str, Any]) -> Any:
            fingerprint = run.get("fingerprint")
            return fingerprint.get(key, _MISSING) if isinstance(fingerprint, Mapping) else _MISSING

        return get

    checks: list[tuple[str, Any]] = [("load model", lambda run: run.get("model", _MISSING))]
    checks += [(what, fingerprint_value(key)) for key, what in _FINGERPRINT_FIELDS]
    for what, getter in checks:
        base_values, new_values = values(base, getter), values(new, getter)
        if len(_distinct([*base_values, *new_values])) > 1:
            shown = ["/".join(_short(v) for v in vs) for vs in (base_values, new_values)]
            reasons.append(f"different {what}: base {shown[0]} vs new {shown[1]}")

    if reasons and not force:
        raise IncompatibleRunsError(
            "runs are not comparable: " + "; ".join(reasons) + " (--force compares anyway)"
        )
    return reasons


# --------------------------------------------------------------------------------------------
# One run's break for one segment


@dataclass(frozen=True)
class _Break:
    """One run's breaking point in log space; a censored break is the interval [cap, inf)."""

    point: float  # log multiplier; log cap when censored (a lower bound)
    lower: float
    upper: float  # inf when censored
    censored: bool
    status: str
    short: bool = False  # censored below the run's cap: it held only as far as the run went


# Multipliers within this relative distance of the cap count as the cap (refinement rounding).
_CAP_TOLERANCE = 1e-3
_COMPLETE = ("complete", None)  # summary `status` of a run that ran its plan (None: not recorded)


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


def _cap(raw: Mapping[str, Any]) -> float | None:
    """The load a not_reached break held to: its low bound (the last trusted step, or the fit's
    lower bound beyond it), else the largest multiplier it names."""
    low = _positive(raw.get("low"))
    if low is not None:
        return low
    known = [v for k in ("multiplier", "high") if (v := _positive(raw.get(k))) is not None]
    return max(known) if known else None


def _below(value: float, cap: float) -> bool:
    return value < cap * (1 - _CAP_TOLERANCE)


def _held(raw: Mapping[str, Any], run: Mapping[str, Any]) -> tuple[float, bool] | None:
    """The load a not_reached break held to, and whether the run stopped short of its cap.

    Short: the run did not complete, or its steps or its last trusted step (the break's low
    bound) stayed below `max_multiplier`. A run that held to its cap counts at the cap; one
    that stopped short counts at the lowest of its bound and its highest step, never at a fit's
    estimate beyond what it measured. None when nothing was held (no trusted step).
    """
    cap = _positive(run.get("max_multiplier"))
    if cap is None:  # a summary without its cap: trust the break's own bound
        held = _cap(raw)
        if held is None:
            return None
        return held, run.get("status") not in _COMPLETE
    # With the cap known, a break without a low bound had no trusted step: its multiplier, if
    # any, is a fit's guess, not a load the run held.
    held = _positive(raw.get("low"))
    if held is None:
        return None
    steps = [
        m
        for step in run.get("steps") or []
        if isinstance(step, Mapping) and (m := _positive(step.get("multiplier"))) is not None
    ]
    top = min(max(steps), cap) if steps else cap
    short = run.get("status") not in _COMPLETE or _below(held, cap) or _below(top, cap)
    return (min(held, top), True) if short else (cap, False)


def _parse_break(raw: Any, run: Mapping[str, Any]) -> _Break | None:
    """None when the break carries no usable number (e.g. a run without a trusted step)."""
    if not isinstance(raw, Mapping):
        return None
    status = str(raw.get("label") or "")
    if status == "not_reached":
        held = _held(raw, run)
        if held is None:
            return None
        point = math.log(held[0])
        return _Break(point, point, math.inf, True, status, short=held[1])
    multiplier, low, high = (_positive(raw.get(k)) for k in ("multiplier", "low", "high"))
    if multiplier is None:
        return None
    known = [v for v in (multiplier, low, high) if v is not None]
    return _Break(math.log(multiplier), math.log(min(known)), math.log(max(known)), False, status)


def _segment_breaks(run: Mapping[str, Any]) -> dict[str, Any]:
    segments = run.get("segments") or []
    return {
        str(seg["profile"]): seg.get("break")
        for seg in segments
        if isinstance(seg, Mapping) and "profile" in seg
    }


# --------------------------------------------------------------------------------------------
# Statistics


def _pooled_log_sd(*groups: np.ndarray) -> float | None:
    """Pooled within-side standard deviation of log breaking points; None below 2 runs a side."""
    usable = [g for g in groups if len(g) >= 2]
    dof = sum(len(g) - 1 for g in usable)
    if dof == 0:
        return None
    squares = sum(float(np.sum((g - g.mean()) ** 2)) for g in usable)
    return math.sqrt(squares / dof)


def _bootstrap_log_ratio(y_base: np.ndarray, y_new: np.ndarray, seed: int) -> tuple[float, float]:
    """Percentile interval of mean(log new) - mean(log base), resampling runs on each side.

    Each side is sorted and the side that sorts first draws first, so swapping base and new
    reuses the same draws for the same data and mirrors the interval exactly.
    """
    rng = np.random.default_rng(seed)
    sides = {"base": np.sort(y_base), "new": np.sort(y_new)}
    order = sorted(sides, key=lambda name: (len(sides[name]), tuple(sides[name].tolist())))
    means = {}
    for name in order:
        y = sides[name]
        idx = rng.integers(0, len(y), size=(BOOTSTRAP_RESAMPLES, len(y)))
        means[name] = y[idx].mean(axis=1)
    diffs = np.sort(means["new"] - means["base"])
    # Symmetric order statistics (not np.percentile's interpolation) keep the mirror exact.
    k = int(BOOTSTRAP_RESAMPLES * ALPHA / 2)
    return float(diffs[k]), float(diffs[-1 - k])


def _mann_whitney(y_base: np.ndarray, y_new: np.ndarray) -> float | None:
    if min(len(y_base), len(y_new)) < MIN_RUNS_FOR_RANK_TEST:
        return None
    if np.ptp(np.concatenate([y_base, y_new])) == 0:
        return 1.0  # every run identical: the test's variance is zero, nothing differs
    return float(stats.mannwhitneyu(y_new, y_base, alternative="two-sided").pvalue)


def _rank_test_can_decide(n_base: int, n_new: int) -> bool:
    """Whether the exact two-sided test can reach ALPHA at all with these sample sizes."""
    if min(n_base, n_new) < MIN_RUNS_FOR_RANK_TEST:
        return False
    # Its smallest p-value (complete separation) is 2 / C(n_base + n_new, n_base).
    return 2.0 / math.comb(n_base + n_new, n_base) < ALPHA


_MIN_RUNS_TO_SHOW_CHANGE = next(
    n for n in range(MIN_RUNS_FOR_RANK_TEST, 100) if _rank_test_can_decide(n, n)
)


def _runs_needed(shift: float, spread: float, band: float, runs_now: int) -> int:
    """Runs per side for a 95% interval to settle the question, with 80% power (log space)."""
    distance = abs(shift) if abs(shift) >= band else band - abs(shift)
    if distance < 1e-9:  # a shift right on the band edge: no number of runs settles it
        return MAX_RUNS_NEEDED
    exact = 2 * (_Z_INTERVAL + _Z_POWER) ** 2 * spread**2 / distance**2
    n = math.ceil(exact) if exact < MAX_RUNS_NEEDED else MAX_RUNS_NEEDED
    if abs(shift) >= band:
        # Showing a change takes the rank test, which needs enough runs to reach ALPHA at all.
        n = max(n, _MIN_RUNS_TO_SHOW_CHANGE)
    return min(MAX_RUNS_NEEDED, max(n, runs_now + 1, 2))


def _finite_exp(value: float) -> float | None:
    return math.exp(value) if math.isfinite(value) else None


def _disjoint(base: Sequence[_Break], new: Sequence[_Break], band: float) -> tuple[float, float]:
    """Log-ratio interval from the runs' own intervals, each widened by the band on both ends."""
    low = min(b.lower for b in new) - band - (max(b.upper for b in base) + band)
    high = max(b.upper for b in new) + band - (min(b.lower for b in base) - band)
    return low, high


def _compare_segment(
    profile: str,
    base: Sequence[_Break],
    new: Sequence[_Break],
    *,
    noise_band: float | None,
    aa_spread: float | None,
    seed: int,
) -> SegmentComparison:
    y_base = np.array([b.point for b in base])
    y_new = np.array([b.point for b in new])
    shift = float(y_new.mean() - y_base.mean())
    censored = any(b.censored for b in (*base, *new))

    spread = aa_spread
    if spread is None:
        spread = _pooled_log_sd(
            np.array([b.point for b in base if not b.censored]),
            np.array([b.point for b in new if not b.censored]),
        )
    if noise_band is not None:
        band_rel = noise_band
    else:
        band_rel = max(MIN_NOISE_BAND, AA_BAND_FACTOR * spread if spread is not None else 0.0)
    band = math.log1p(band_rel)

    verdict: Verdict = "inconclusive"
    method: Method
    p_value: float | None = None
    runs_needed: int | None = None
    ratio: float | None = math.exp(shift)
    note = ""
    if censored:
        method = "censored"
        low, high = _disjoint(base, new, band)
        short = [b for b in (*base, *new) if b.short]
        if all(b.censored for b in (*base, *new)):
            ratio, low, high = None, math.nan, math.nan
            if short:
                stops = sorted({round(math.exp(b.point), 6) for b in short})
                note = (
                    f"held on both sides, but {len(short)} of {len(base) + len(new)} runs "
                    f"stopped short of their cap or did not complete "
                    f"(held only to ×{' / ×'.join(f'{c:g}' for c in stops)}): "
                    "not evidence of no change; run again up to the cap"
                )
            else:
                verdict = "no_change"
                caps = sorted({round(math.exp(b.point), 6) for b in (*base, *new)})
                note = f"held up to the cap on both sides (×{' / ×'.join(f'{c:g}' for c in caps)})"
        else:
            if high < 0:
                verdict = "regression"
            elif low > 0:
                verdict = "improvement"
            elif short:
                note = "some runs stopped short of their cap: run them again up to the cap; "
            else:
                note = "a break at or near the cap: raise the cap rather than add runs; "
            note += "runs that held count at the load they held, so the ratio is a bound"
    elif len(base) >= 2 and len(new) >= 2:
        method = "bootstrap"
        low, high = _bootstrap_log_ratio(y_base, y_new, seed)
        p_value = _mann_whitney(y_base, y_new)
        if p_value is not None and _rank_test_can_decide(len(base), len(new)):
            down = up = p_value < ALPHA
        else:
            fallback_low, fallback_high = _disjoint(base, new, band)
            down, up = fallback_high < 0, fallback_low > 0
            note = "too few runs for the rank test: a change also needs the run intervals apart"
        if shift < -band and high < 0 and down:
            verdict = "regression"
        elif shift > band and low > 0 and up:
            verdict = "improvement"
        elif -band <= low and high <= band:
            verdict = "no_change"
    else:
        method = "run_intervals"
        low, high = _disjoint(base, new, band)
        if high < 0:
            verdict = "regression"
        elif low > 0:
            verdict = "improvement"
        note = "one run on a side: run intervals widened by the noise band stand in for the spread"

    if verdict == "inconclusive" and method != "censored":
        forecast_spread = spread
        if forecast_spread is None:
            # Read each widened run interval as a 95% interval of a run-to-run spread.
            halves = [(b.upper - b.lower) / 2 + band for b in (*base, *new)]
            forecast_spread = math.sqrt(sum(h * h for h in halves) / len(halves)) / _Z_INTERVAL
        forecast_band = (
            band
            if noise_band is not None
            else math.log1p(max(MIN_NOISE_BAND, AA_BAND_FACTOR * forecast_spread))
        )
        runs_needed = _runs_needed(shift, forecast_spread, forecast_band, min(len(base), len(new)))

    if any(b.status == "extrapolated" for b in (*base, *new)):
        note = "; ".join(filter(None, [note, "some breaks are extrapolated beyond the last step"]))

    return SegmentComparison(
        profile=profile,
        verdict=verdict,
        method=method,
        ratio=ratio,
        ratio_low=_finite_exp(low),
        ratio_high=_finite_exp(high),
        p_value=p_value,
        noise_band=band_rel,
        aa_spread=spread,
        base_multiplier=math.exp(float(y_base.mean())),
        new_multiplier=math.exp(float(y_new.mean())),
        base_runs=len(base),
        new_runs=len(new),
        runs_needed=runs_needed,
        note=note,
    )


def _overall(segments: Sequence[SegmentComparison]) -> Verdict:
    verdicts = {s.verdict for s in segments}
    # Any regression fails the release; an undecided segment outranks an improvement elsewhere.
    precedence: tuple[Verdict, ...] = ("regression", "inconclusive", "improvement")
    for verdict in precedence:
        if verdict in verdicts:
            return verdict
    return "no_change" if segments else "inconclusive"


def compare(
    base: Sequence[Mapping[str, Any]],
    new: Sequence[Mapping[str, Any]],
    *,
    noise_band: float | None = None,
    aa_spread: float | None = None,
    seed: int = 0,
    force: bool = False,
) -> Comparison:
    """Compare the breaking points of the new runs with the base runs, segment by segment.

    Raises IncompatibleRunsError when the runs are not comparable, unless force (then the
    reasons become warnings). The overall verdict is "regression" if any segment regressed.
    """
    if noise_band is not None and not noise_band >= 0:
        raise ValueError(f"noise_band must be >= 0, got {noise_band}")
    if aa_spread is not None and not aa_spread >= 0:
        raise ValueError(f"aa_spread must be >= 0, got {aa_spread}")
    warnings = list(check_comparable(base, new, force=force))

    def breaks(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[_Break]]:
        by_segment: dict[str, list[_Break]] = {}
        for run in runs:
            for profile, raw in _segment_breaks(run).items():
                parsed = _parse_break(raw, run)
                if parsed is None:
                    why = (
                        "no trusted step (see its report's warnings)"
                        if isinstance(raw, Mapping) and raw.get("label") == "not_reached"
                        else "no usable break"
                    )
                    warnings.append(f"run {_run_name(run)}: {why} for {profile}, skipped")
                    by_segment.setdefault(profile, [])
                else:
                    by_segment.setdefault(profile, []).append(parsed)
        return by_segment

    base_breaks, new_breaks = breaks(base), breaks(new)
    common = [p for p in base_breaks if p in new_breaks]
    segments = []
    for profile in common:
        if not base_breaks[profile] or not new_breaks[profile]:
            warnings.append(f"{profile}: no usable break on one side, not compared")
            continue
        segments.append(
            _compare_segment(
                profile,
                base_breaks[profile],
                new_breaks[profile],
                noise_band=noise_band,
                aa_spread=aa_spread,
                seed=seed,
            )
        )
    only_base = tuple(p for p in base_breaks if p not in new_breaks)
    only_new = tuple(p for p in new_breaks if p not in base_breaks)
    if only_base or only_new:
        warnings.append("segments measured on one side only: " + ", ".join((*only_base, *only_new)))
    return Comparison(
        verdict=_overall(segments),
        segments=tuple(segments),
        base_run_ids=tuple(_run_name(r) for r in base),
        new_run_ids=tuple(_run_name(r) for r in new),
        base_labels=tuple(_distinct(str(r.get("label", "")) for r in base)),
        new_labels=tuple(_distinct(str(r.get("label", "")) for r in new)),
        only_base=only_base,
        only_new=only_new,
        warnings=tuple(warnings),
        seed=seed,
    )


# --------------------------------------------------------------------------------------------
# History


def _geometric_mean(values: Sequence[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def history(summaries: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per segment, the breaking point per run label in time order (for a trend report).

    Runs sharing a label (repeats of one release) are pooled: `multiplier` is the geometric mean
    of their bracketed or extrapolated breaks, `low`/`high` the envelope of their intervals,
    `not_reached` how many held to the cap and `cap` the highest such cap.
    """

    def when(item: tuple[int, Mapping[str, Any]]) -> tuple[float, int]:
        created = item[1].get("created_at")
        if isinstance(created, int | float) and math.isfinite(created):
            return (float(created), item[0])
        return (math.inf, item[0])  # undated runs go last, in the order given

    groups: dict[str, list[Mapping[str, Any]]] = {}
    for index, run in sorted(enumerate(summaries), key=when):
        key = str(run.get("label") or run.get("run_id") or f"run {index}")
        groups.setdefault(key, []).append(run)

    trend: dict[str, list[dict[str, Any]]] = {}
    for label, runs in groups.items():
        per_segment: dict[str, list[tuple[Mapping[str, Any], Mapping[str, Any]]]] = {}
        for run in runs:
            for profile, raw in _segment_breaks(run).items():
                if isinstance(raw, Mapping):
                    per_segment.setdefault(profile, []).append((run, raw))
        for profile, items in per_segment.items():
            held = [raw for _, raw in items if raw.get("label") == "not_reached"]
            broke = [raw for _, raw in items if raw.get("label") != "not_reached"]
            multipliers = [m for raw in broke if (m := _positive(raw.get("multiplier")))]
            lows = [v for raw in broke if (v := _positive(raw.get("low") or raw.get("multiplier")))]
            highs = [
                v for raw in broke if (v := _positive(raw.get("high") or raw.get("multiplier")))
            ]
            caps = [cap for raw in held if (cap := _cap(raw)) is not None]
            statuses = _distinct(str(raw.get("label")) for _, raw in items)
            trend.setdefault(profile, []).append(
                {
                    "label": label,
                    "created_at": runs[0].get("created_at"),
                    "git_rev": runs[-1].get("git_rev"),
                    "run_ids": [_run_name(run) for run, _ in items],
                    "runs": len(items),
                    "multiplier": _geometric_mean(multipliers),
                    "low": min(lows) if lows else None,
                    "high": max(highs) if highs else None,
                    "status": statuses[0] if len(statuses) == 1 else "mixed",
                    "not_reached": len(held),
                    "cap": max(caps) if caps else None,
                }
            )
    return trend
