"""Release-over-release comparison of breaking points: runs in, verdicts out.

Pure: takes runs as typed data (`RunLike`, e.g. the runs layer's summaries), never paths. Which
runs may be compared is decided before, by the runs layer's comparability rule. The method is
in docs/design.md#comparison; the per-segment statistics are in release_verdict.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from breakpoint.analysis.release_input import LogBreak, RunLike, log_break, segment_breaks
from breakpoint.analysis.release_verdict import SegmentComparison, Verdict, compare_segment
from breakpoint.errors import ExitStatus

__all__ = ["Comparison", "RunLike", "SegmentComparison", "Verdict", "compare"]


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


def _overall(segments: Sequence[SegmentComparison]) -> Verdict:
    verdicts = {s.verdict for s in segments}
    # Any regression fails the release; an undecided segment outranks an improvement elsewhere.
    precedence: tuple[Verdict, ...] = ("regression", "inconclusive", "improvement")
    for verdict in precedence:
        if verdict in verdicts:
            return verdict
    return "no_change" if segments else "inconclusive"


def _breaks(runs: Sequence[RunLike], warnings: list[str]) -> dict[str, list[LogBreak]]:
    """Each segment's usable breaks over the runs; unusable ones are skipped with a warning."""
    by_segment: dict[str, list[LogBreak]] = {}
    for run in runs:
        for profile, raw in segment_breaks(run).items():
            parsed = log_break(raw, run)
            if parsed is None:
                why = (
                    "no trusted step (see its report's warnings)"
                    if raw is not None and raw.label == "not_reached"
                    else "no usable break"
                )
                warnings.append(f"run {run.name}: {why} for {profile}, skipped")
                by_segment.setdefault(profile, [])
            else:
                by_segment.setdefault(profile, []).append(parsed)
    return by_segment


def _labels(runs: Sequence[RunLike]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(run.label or "" for run in runs))


def compare(
    base: Sequence[RunLike],
    new: Sequence[RunLike],
    *,
    noise_band: float | None = None,
    aa_spread: float | None = None,
    seed: int = 0,
) -> Comparison:
    """Compare the breaking points of the new runs with the base runs, segment by segment.

    The overall verdict is "regression" if any segment regressed, else "inconclusive" if any
    is undecided, else "improvement" if any improved, else "no_change".
    """
    if noise_band is not None and not noise_band >= 0:
        raise ValueError(f"noise_band must be >= 0, got {noise_band}")
    if aa_spread is not None and not aa_spread >= 0:
        raise ValueError(f"aa_spread must be >= 0, got {aa_spread}")
    warnings: list[str] = []
    base_breaks, new_breaks = _breaks(base, warnings), _breaks(new, warnings)
    segments = []
    for profile in (p for p in base_breaks if p in new_breaks):
        if not base_breaks[profile] or not new_breaks[profile]:
            warnings.append(f"{profile}: no usable break on one side, not compared")
            continue
        segments.append(
            compare_segment(
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
        base_run_ids=tuple(run.name for run in base),
        new_run_ids=tuple(run.name for run in new),
        base_labels=_labels(base),
        new_labels=_labels(new),
        only_base=only_base,
        only_new=only_new,
        warnings=tuple(warnings),
        seed=seed,
    )
