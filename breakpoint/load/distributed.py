"""Distributed runs over Locust's master/worker mode (docs/design.md#distributed-runs): the
master's step source (`RemoteSteps`: announces each step, merges the workers' per-step
histograms exactly) and the worker's agent (`WorkerAgent`: measures its own windows).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import gevent

from breakpoint.analysis.criteria import calmest, cool_down_note, needs_cool_down
from breakpoint.load.arrivals import ArrivalScheduler
from breakpoint.load.recorder import Recorder, stragglers_matter
from breakpoint.load.vitals import RemoteVitals
from breakpoint.plan.steps import PlannedStep
from breakpoint.results import StepResult, group_records, merge_steps

MSG_STEP = "bp_step"
MSG_CLOSE = "bp_close"
MSG_PROVISIONAL = "bp_provisional"
MSG_FINAL = "bp_final"
MSG_STOP_ARRIVALS = "bp_stop_arrivals"
MSG_RATES = "bp_rates"
MSG_SCENARIO_FAILED = "bp_scenario_failed"  # a worker's users keep raising (crashes.py)

# How long the master waits for workers' provisional results before deciding without them.
COLLECT_TIMEOUT_S = 5.0


def _active_worker_ids(runner: Any) -> list[str]:
    clients = runner.clients
    nodes = list(clients.ready) + list(clients.spawning) + list(clients.running)
    return sorted({node.id for node in nodes})


class RemoteSteps:
    """The master's StepSource: steps are measured by the workers and merged here."""

    def __init__(
        self,
        segments: Sequence[str],
        *,
        model: str,
        on_final: Callable[[StepResult], None],
        drain_timeout_s: float,
        say: Callable[[str], None],
    ) -> None:
        self.segments = list(segments)
        self.model = model
        self.on_final = on_final
        self.drain_timeout_s = drain_timeout_s
        self.say = say
        self.runner: Any = None
        self._empty = Recorder(segments)  # for a step no worker reported on
        self._expected: dict[int, set[str]] = {}
        self._closed_at: dict[int, float] = {}
        self._partial: dict[int, bool] = {}
        self._provisional: dict[int, dict[str, StepResult]] = {}
        # (in flight, offered) iterations per segment of each worker as its window closed
        self._in_flight: dict[int, dict[str, dict[str, tuple[int, int]]]] = {}
        self._final: dict[int, dict[str, StepResult]] = {}
        self._merged_final: dict[int, StepResult] = {}
        self._delivered: set[int] = set()
        self._blocked_by_worker: dict[str, dict[str, int]] = {}
        self.shares: dict[str, float] = {}
        self._load = 0.0
        self._index: int | None = None
        self._sent_counts: dict[str, dict[str, int]] = {}
        self._cooling: set[int] = set()
        self.calm_ms: dict[str, float] = {}  # each segment's lowest mean latency so far
        self._ever_had_workers = False
        self.vitals = RemoteVitals()
        # The first worker's report that its scenario keeps raising, and every worker's count.
        self.scenario_failure: str | None = None
        self.scenario_errors: dict[str, int] = {}
        self.not_emulated: set[str] = set()  # classes the workers could not emulate

    def attach(self, runner: Any) -> None:
        self.runner = runner
        runner.register_message(MSG_PROVISIONAL, self._on_provisional)
        runner.register_message(MSG_FINAL, self._on_final)
        self.vitals.attach(runner, lambda: set(_active_worker_ids(runner)))
        runner.register_message(MSG_SCENARIO_FAILED, self._on_scenario_failed)

    def workers_gone(self) -> str | None:
        """Why the run cannot go on: every worker that joined is gone (None while any is up)."""
        if self.runner is None:
            return None
        clients = self.runner.clients
        missing = {node.id for node in clients.missing}
        # Connected in any state (a worker the master told to stop is still there), or lost.
        if any(node.id not in missing for node in clients.all):
            self._ever_had_workers = True
            return None
        if not self._ever_had_workers:
            return None
        return "every worker was lost (none is connected to the master any more)"

    def _on_scenario_failed(self, environment: Any, msg: Any, **_: Any) -> None:
        self.scenario_errors[msg.node_id] = int(msg.data.get("total", 0))
        if self.scenario_failure is None:
            self.scenario_failure = str(msg.data.get("reason"))

    # StepSource ------------------------------------------------------------------------------
    def open(self, index: int, planned: PlannedStep, load: float, now: float) -> None:
        ids = _active_worker_ids(self.runner)
        self._expected[index] = set(ids)
        self._empty.open_step(
            index, planned.multiplier, load, planned.phase, planned.warmup_s, start=now
        )
        self._load, self._index, self._sent_counts = load, index, {}
        for k, client_id in enumerate(ids):
            self.runner.send_message(
                MSG_STEP,
                {
                    "index": index,
                    "multiplier": planned.multiplier,
                    "load": load,
                    "phase": planned.phase,
                    "warmup_s": planned.warmup_s,
                    "start": now,
                    "rate": load / len(ids) if ids else 0.0,
                    "worker": k,
                    "workers": len(ids),
                },
                client_id=client_id,
            )

    def close(self, index: int, now: float, *, partial: bool) -> None:
        self._closed_at[index] = now
        self._partial[index] = partial
        self._empty.close_step(index, now)
        for client_id in self._expected.get(index, ()):
            self.runner.send_message(
                MSG_CLOSE, {"index": index, "end": now, "partial": partial}, client_id=client_id
            )
        gevent.spawn(self._await_final, index)

    def provisional(self, index: int, now: float) -> StepResult | None:
        got = self._provisional.get(index, {})
        waiting = self._alive(index) - set(got)
        if waiting and now - self._closed_at[index] < COLLECT_TIMEOUT_S:
            return None
        if index in self._cooling:
            return self._merged_final.get(index)
        merged = self._merge(index, got)
        self.calm_ms = calmest(self.calm_ms, merged)
        if needs_cool_down(merged, self._flying(index), self.calm_ms):
            # As on one process (LocalSteps.close): the target could not keep up; pause every
            # worker's arrivals until this step's requests drain, then decide on the finals.
            self.stop_arrivals()
            self._cooling.add(index)
            self.say(cool_down_note(index))
            return self._merged_final.get(index)
        if self._stragglers(index):
            # Slow requests of this window are still running on the workers: decide on the
            # final results (delivered by _await_final once they finish or the drain ends).
            return self._merged_final.get(index)
        return merged

    def _flying(self, index: int) -> int:
        return sum(
            flying
            for counts in self._in_flight.get(index, {}).values()
            for flying, _ in counts.values()
        )

    def _stragglers(self, index: int) -> bool:
        totals: dict[str, list[int]] = {}
        for counts in self._in_flight.get(index, {}).values():
            for segment, (flying, offered) in counts.items():
                total = totals.setdefault(segment, [0, 0])
                total[0] += flying
                total[1] += offered
        return stragglers_matter({k: (v[0], v[1]) for k, v in totals.items()})

    def backlogged(self, load: float) -> bool:
        # Called every tick during a step: keep each worker's arrival rates matched to the users
        # it actually runs (the dispatcher may put a whole segment on one worker).
        self._rebalance()
        # No growth mid-step: each change of the user count makes Locust's master re-dispatch
        # users across the workers, which disturbed the step's p95 by half in
        # tests/test_measurement_e2e.py. Pools are sized as each step starts (spare users per
        # worker, busy time learnt from the steps before); a worker whose arrivals wait for
        # users flags its step generator-bound, and the level is run again with that pool.
        return False

    def set_shares(self, shares: dict[str, float]) -> None:
        self.shares = dict(shares)

    def _rebalance(self) -> None:
        if self.runner is None or self._index is None or self.model != "open":
            return
        clients = {cid: self.runner.clients.get(cid) for cid in _active_worker_ids(self.runner)}
        counts: dict[str, dict[str, int]] = {}
        for cid, node in clients.items():
            per_segment: dict[str, int] = {}
            for cls_name, n in (getattr(node, "user_classes_count", None) or {}).items():
                segment = cls_name.rsplit("@", 1)[-1]
                per_segment[segment] = per_segment.get(segment, 0) + int(n)
            counts[cid] = per_segment
        if not counts or counts == self._sent_counts or not any(counts.values()):
            return
        totals: dict[str, int] = {}
        for per_segment in counts.values():
            for segment, n in per_segment.items():
                totals[segment] = totals.get(segment, 0) + n
        for cid, per_segment in counts.items():
            rates = {
                s: self._load * self.shares.get(s, 0.0) * per_segment.get(s, 0) / totals[s]
                for s in totals
                if totals[s]
            }
            self.runner.send_message(
                MSG_RATES, {"index": self._index, "rates": rates}, client_id=cid
            )
        self._sent_counts = counts

    def stop_arrivals(self) -> None:
        if self.runner is not None:
            for client_id in _active_worker_ids(self.runner):
                self.runner.send_message(MSG_STOP_ARRIVALS, {}, client_id=client_id)

    # Finals ----------------------------------------------------------------------------------
    def pending(self) -> int:
        return len(set(self._closed_at) - self._delivered)

    def _alive(self, index: int) -> set[str]:
        return self._expected.get(index, set()) & set(_active_worker_ids(self.runner))

    def _merge(self, index: int, parts: dict[str, StepResult], waited_s: float = 0.0) -> StepResult:
        missing = sorted(self._expected.get(index, set()) - set(parts))
        lost = len(missing)
        # What the master knew of each lost worker when it stopped waiting: a worker whose
        # heartbeat lapsed ("missing") differs from one that is gone (tests/test_measurement_e2e
        # lost one at step 0 now and then, with no trace of why).
        clients = self.runner.clients if self.runner is not None else {}
        detail = ", ".join(
            f"{cid}: {getattr(clients.get(cid), 'state', 'gone')}" for cid in missing
        )
        detail += f"; no final after {waited_s:.1f} s" if missing and waited_s > 0 else ""
        if not parts:
            empty = self._empty.result(index, final=True, partial=self._partial.get(index, False))
            merged = merge_steps([empty], workers_lost=max(1, lost))
        else:
            merged = merge_steps(list(parts.values()), workers_lost=lost)
        if not detail:
            return merged
        reasons = (*merged.generator.reasons, f"lost: {detail}")
        return replace(merged, generator=replace(merged.generator, reasons=reasons))

    def _await_final(self, index: int) -> None:
        started = time.time()
        deadline = started + self.drain_timeout_s + COLLECT_TIMEOUT_S
        while time.time() < deadline:
            if self._alive(index) <= set(self._final.get(index, {})):
                break
            gevent.sleep(0.1)
        final = self._merge(index, self._final.get(index, {}), time.time() - started)
        self._delivered.add(index)
        self._merged_final[index] = final
        self.on_final(final)

    def _on_provisional(self, environment: Any, msg: Any, **_: Any) -> None:
        step = _decode(msg.data)
        self._provisional.setdefault(step.index, {})[msg.node_id] = step
        flying = {k: (int(v[0]), int(v[1])) for k, v in msg.data.get("in_flight", {}).items()}
        self._in_flight.setdefault(step.index, {})[msg.node_id] = flying

    @property
    def blocked(self) -> dict[str, int]:
        """Requests each worker's host allow-list blocked (counts are cumulative per worker)."""
        total: dict[str, int] = {}
        for counts in self._blocked_by_worker.values():
            for host, n in counts.items():
                total[host] = total.get(host, 0) + n
        return total

    def _on_final(self, environment: Any, msg: Any, **_: Any) -> None:
        self._blocked_by_worker[msg.node_id] = dict(msg.data.get("blocked", {}))
        self.not_emulated.update(msg.data.get("not_emulated", ()))
        if msg.data.get("scenario_errors"):
            self.scenario_errors[msg.node_id] = int(msg.data["scenario_errors"])
        step = _decode(msg.data)
        self._final.setdefault(step.index, {})[msg.node_id] = step


def _decode(data: dict[str, Any]) -> StepResult:
    (step,) = group_records(data["records"])
    return step


class WorkerAgent:
    """On a worker: measure the windows the master announces; send the results back."""

    def __init__(
        self,
        runner: Any,
        recorder: Recorder,
        scheduler: ArrivalScheduler | None,
        *,
        seed: int,
        drain_timeout_s: float,
        collect_garbage: Callable[[bool], None] = lambda everything: None,
        guard: Any = None,
        crashes: Any = None,
        not_emulated: set[str] | None = None,
    ) -> None:
        self.guard = guard
        self.crashes = crashes
        self.not_emulated = not_emulated if not_emulated is not None else set()
        self.collect_garbage = collect_garbage
        self.runner = runner
        self.recorder = recorder
        self.scheduler = scheduler
        self.seed = seed
        self.drain_timeout_s = drain_timeout_s
        self._seeded = False
        self.current: int | None = None  # the window of the step being measured
        runner.register_message(MSG_STEP, self._on_step)
        runner.register_message(MSG_CLOSE, self._on_close)
        runner.register_message(MSG_STOP_ARRIVALS, self._on_stop_arrivals)
        runner.register_message(MSG_RATES, self._on_rates)

    def _on_step(self, environment: Any, msg: Any, **_: Any) -> None:
        d = msg.data
        self.collect_garbage(int(d["index"]) == 0)  # everything before the first step only
        self.current = int(d["index"])
        if self.crashes is not None:
            self.crashes.step = int(d["index"])
        self.recorder.open_step(
            int(d["index"]),
            float(d["multiplier"]),
            float(d["load"]),
            str(d["phase"]),
            float(d["warmup_s"]),
            start=float(d["start"]),
        )
        if self.scheduler is not None:
            if not self._seeded:
                # Each worker draws its own arrivals: same plan seed, different stream.
                self.scheduler.reseed(self.seed * 1_009 + int(d["worker"]))
                self._seeded = True
            self.scheduler.set_rate(float(d["rate"]), int(d["index"]))

    def _on_close(self, environment: Any, msg: Any, **_: Any) -> None:
        index, partial = int(msg.data["index"]), bool(msg.data["partial"])
        self.recorder.close_step(index, float(msg.data["end"]))
        provisional = self.recorder.result(index, final=False, partial=partial)
        self.runner.send_message(
            MSG_PROVISIONAL,
            {
                "records": provisional.records(),
                "in_flight": self.recorder.in_flight_by_segment(index),
            },
        )
        gevent.spawn(self._finalise, index, partial)

    def _on_rates(self, environment: Any, msg: Any, **_: Any) -> None:
        if self.scheduler is not None:
            self.scheduler.set_rates(dict(msg.data["rates"]), int(msg.data["index"]))

    def _on_stop_arrivals(self, environment: Any, msg: Any, **_: Any) -> None:
        if self.scheduler is not None:
            self.scheduler.set_rate(0.0, -1)

    def _finalise(self, index: int, partial: bool) -> None:
        deadline = time.time() + self.drain_timeout_s
        while self.recorder.in_flight(index) > 0 and time.time() < deadline:
            gevent.sleep(0.1)
        final = self.recorder.result(index, final=True, partial=partial)
        blocked = dict(self.guard.blocked) if self.guard is not None else {}
        errors = self.crashes.total if self.crashes is not None else 0
        self.runner.send_message(
            MSG_FINAL,
            {
                "records": final.records(),
                "blocked": blocked,
                "scenario_errors": errors,
                "not_emulated": sorted(self.not_emulated),
            },
        )
        self.recorder.forget(index)

    def watch_scenario(self) -> None:
        """Tell the master once when this worker's users keep raising (crashes.py)."""
        while self.crashes is not None:
            gevent.sleep(0.5)
            reason = self.crashes.failing()
            if reason is not None:
                data = {"reason": reason, "total": self.crashes.total}
                self.runner.send_message(MSG_SCENARIO_FAILED, data)
                return
