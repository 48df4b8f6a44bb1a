"""Play one window of a plan exactly, event by event (no per-second stepping).

Plans are made on predicted profiles and scored on true ones: ``truth`` gives each stream's start
accuracy and, for its planned config, the accuracy really reached and the accelerator-seconds
really needed (optionally per time segment of the window, so that the old model is scored on the
part of the window it serves and the new one on the rest). Between events every share is
constant, so accuracy integrals and job progress are exact; events are the start and end of
micro-profiling, the end of the label delay, job completions (the scheduler's ``on_completion``
re-plans) and periodic progress checks (``on_progress``). A zero-cost job (installing a cached
model, ``ekya.plans.schedulers.model_cache``) needs no training share: it completes at the label
delay, when its decision can be made, like any job that starts then.

The plan is checked before it is played, and so is every re-plan: shares in [0, 1], no accelerator
holding more than 1.0. The scheduler is told only what a deployed system could observe: the
serving models' validation accuracy (never the live ground truth), the predicted target of each
running job, and the work it has left as its progress shows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ekya.errors import EkyaError
from ekya.plans.accuracy import Segment
from ekya.plans.curves import evaluate
from ekya.plans.quanta import EPS
from ekya.plans.scheduler import Scheduler, Shares, StreamState, WindowState
from ekya.plans.types import Budget, Plan, StreamPlan
from ekya.profiles.types import StreamProfile


@dataclass(frozen=True)
class StreamOutcome:
    """How one stream's window went: exact time-averaged accuracy, completion instant, timeline."""

    stream: str
    config: str | None
    accuracy: float
    completion_time: float | None
    predicted_accuracy: float
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class WindowOutcome:
    """All streams of one played window, keyed by stream name; ``accuracy`` is the mean over streams."""

    streams: Mapping[str, StreamOutcome]
    accuracy: float
    completions: tuple[tuple[float, str], ...]


def _check_loads(who: str, loads: np.ndarray, when: str) -> None:
    """Raise EkyaError if any accelerator's shares add up to more than 1.0."""
    over = np.flatnonzero(loads > 1 + 1e-6)
    if not over.size:
        return
    k = int(over[0])
    raise EkyaError(f"scheduler {who!r}: {when} puts {loads[k]:.4g} of accelerator {k} to use (at most 1.0); "
                     "shares on one accelerator must add up to at most 1 (ekya.plans.packing.pack places and "
                     "repairs a plan)")


def check_plan(plan: Plan, budget: Budget, who: str) -> None:
    """Raise EkyaError unless every share is in [0, 1], placed, and no accelerator holds more than 1.0."""
    G = budget.accelerators
    loads = np.zeros(G)
    for s in plan.streams:
        for kind, share, dev in (("inference", s.infer_share, s.infer_device),
                                 ("training", s.train_share, s.train_device)):
            if not (-EPS <= share <= 1 + EPS):
                raise EkyaError(f"scheduler {who!r}: stream {s.stream!r} has {kind} share {share!r}, outside [0, 1]")
            if share <= EPS:
                continue
            if dev is None and G > 1:
                raise EkyaError(f"scheduler {who!r}: stream {s.stream!r}'s {kind} job (share {share:g}) is on no "
                                f"accelerator of the {G}; place the plan with ekya.plans.packing.pack(plan, budget)")
            dev = 0 if dev is None else int(dev)
            if not 0 <= dev < G:
                raise EkyaError(f"scheduler {who!r}: stream {s.stream!r}'s {kind} job is on accelerator {dev}, "
                                f"but the cluster has {G} (0..{G - 1})")
            loads[dev] += share
    _check_loads(who, loads, "its plan")


def _check_shares(shares: Shares, states: list[StreamState], budget: Budget, who: str, now: float) -> np.ndarray:
    """Validate re-planned shares; return them as an array (streams x [infer, train]) in state order."""
    names = [s.stream for s in states]
    if len(shares) != len(names) or any(n not in shares for n in names):
        raise EkyaError(f"scheduler {who!r} re-planning at t={now:.3f}s returned shares for "
                        f"{sorted(set(shares) ^ set(names))} that do not match the window's streams")
    arr = np.array([shares[n] for n in names], dtype=float).reshape(len(names), 2)
    bad = np.flatnonzero((arr < -EPS).any(axis=1) | (arr > 1 + EPS).any(axis=1) | np.isnan(arr).any(axis=1))
    if bad.size:
        k = int(bad[0])
        raise EkyaError(f"scheduler {who!r}: share out of [0, 1] for stream {names[k]!r} at t={now:.3f}s: "
                        f"{tuple(arr[k])}")
    done = np.array([s.done for s in states])
    bad = np.flatnonzero(done & (arr[:, 1] > EPS))
    if bad.size:
        k = int(bad[0])
        raise EkyaError(f"scheduler {who!r}: stream {names[k]!r} has no running job but got training share {arr[k, 1]}")
    one = budget.accelerators == 1
    idev = np.array([(0 if one else -1) if s.infer_device is None else s.infer_device for s in states])
    tdev = np.array([(0 if one else -1) if s.train_device is None else s.train_device for s in states])
    n = max(int(max(idev.max(initial=-1), tdev.max(initial=-1))) + 1, 1)
    loads = np.bincount(idev[idev >= 0], weights=arr[idev >= 0, 0], minlength=n) + \
        np.bincount(tdev[tdev >= 0], weights=arr[tdev >= 0, 1], minlength=n)
    if arr.sum() > budget.capacity + 1e-6:
        raise EkyaError(f"scheduler {who!r}: re-planned shares at t={now:.3f}s add up to {arr.sum():.4g}, "
                        f"more than the {budget.capacity:g} accelerator(s)")
    _check_loads(who, loads, f"re-planning at t={now:.3f}s")
    return arr


def segment_boundaries(window: float, segments: int) -> list[float]:
    """The inner boundaries of ``segments`` equal segments of a window: where progress is checked."""
    return [window * j / segments for j in range(1, max(int(segments), 1))]


def _segment_values(profiles: Sequence[tuple[float, ...]], scalars: np.ndarray) -> np.ndarray:
    """Per stream, accuracy on each equal time segment of the window (streams x n); scalars where none."""
    n = max((len(p) for p in profiles), default=0) or 1
    out = np.repeat(scalars[:, None], n, axis=1)
    for k, p in enumerate(profiles):
        if len(p) == n:
            out[k] = p
        elif len(p):
            raise EkyaError(f"play_window: stream {k} has {len(p)} accuracy segments, others {n}")
    return out


class _Cumulative:
    """Exact integral of a piecewise-constant accuracy over [0, t], per stream (segments of equal length)."""

    def __init__(self, values: np.ndarray, window: float) -> None:
        self.values, self.n = values, values.shape[1]
        self.length = window / self.n
        self.prefix = np.concatenate([np.zeros((values.shape[0], 1)), np.cumsum(values * self.length, axis=1)], axis=1)

    def between(self, t0: float, t1: float) -> np.ndarray:
        """Integral over [t0, t1] for every stream."""
        if self.n == 1:  # constant accuracy: the plain product, exactly as before segments existed
            return self.values[:, 0] * (t1 - t0)
        return self._at(t1) - self._at(t0)

    def _at(self, t: float) -> np.ndarray:
        j = min(int(t // self.length), self.n - 1)
        return self.prefix[:, j] + self.values[:, j] * (t - j * self.length)


@dataclass(frozen=True)
class _Jobs:
    """Per planned stream, fixed for the window: what really happens and what the scheduler is told.

    start_accuracy / new_accuracy: the serving and the retrained model's true live accuracy (the
    serving one's where there is no job), with their per-segment values; cost / told_cost: the true
    and the predicted accelerator-seconds of the job; told_target: its predicted accuracy;
    seen_before / seen_after: the validation accuracy a deployed system observes before and after
    the job completes.
    """

    start_accuracy: np.ndarray
    new_accuracy: np.ndarray
    old_segments: list[tuple[float, ...]]
    new_segments: list[tuple[float, ...]]
    cost: np.ndarray
    told_cost: np.ndarray
    told_target: np.ndarray
    seen_before: np.ndarray
    seen_after: np.ndarray
    has_job: np.ndarray


def _needs_no_share(p: StreamProfile, config: str) -> bool:
    """Whether the planned config is a zero-cost job (installing a cached model): it needs no training share."""
    return any(c.config == config and c.cost == 0 for c in p.configs)


def _jobs(streams: Sequence[StreamPlan], truth: Mapping[str, StreamProfile],
          told: Mapping[str, StreamProfile]) -> _Jobs:
    """Look up every planned stream's true and told profile of its planned config."""
    S = len(streams)
    a0 = np.array([truth[s.stream].start_accuracy for s in streams], dtype=float)
    a1 = a0.copy()
    old_segs: list[tuple[float, ...]] = [truth[s.stream].start_segments for s in streams]
    new_segs: list[tuple[float, ...]] = list(old_segs)
    seen0 = np.array([told[s.stream].start_accuracy if s.stream in told else math.nan for s in streams], dtype=float)
    seen1 = seen0.copy()
    cost, told_cost, told_target = np.zeros(S), np.zeros(S), np.full(S, math.nan)
    has_job = np.zeros(S, dtype=bool)
    for k, s in enumerate(streams):
        if s.config is None or (s.train_share <= EPS and not _needs_no_share(truth[s.stream], s.config)):
            continue
        try:
            cp = truth[s.stream].config(s.config)
        except KeyError:
            raise EkyaError(f"play_window: stream {s.stream!r} has no true profile for planned config "
                            f"{s.config!r}") from None
        a1[k], cost[k], has_job[k], new_segs[k] = cp.accuracy, cp.cost, True, cp.segments
        try:
            pc = told[s.stream].config(s.config)
            told_target[k] = pc.accuracy
            told_cost[k] = pc.cost if math.isfinite(pc.cost) else cp.cost
        except KeyError:
            told_cost[k] = cp.cost
        seen1[k] = cp.val_accuracy if math.isfinite(cp.val_accuracy) else told_target[k]
    if np.isnan(a0).any() or np.isnan(a1).any() or not np.all(np.isfinite(cost)):
        raise EkyaError("play_window: true profiles must have numeric start accuracy, accuracy and cost")
    return _Jobs(a0, a1, old_segs, new_segs, cost, told_cost, told_target, seen0, seen1, has_job)


class _Timeline:
    """The window as it is played: every stream's shares, model, job progress and accuracy integral so far.

    Between events every share is constant, so ``advance`` integrates exactly; a stream's timeline
    segment stays open until its shares or its model change.
    """

    def __init__(self, streams: Sequence[StreamPlan], jobs: _Jobs, budget: Budget) -> None:
        S = len(streams)
        self.streams, self.jobs, self.budget = list(streams), jobs, budget
        self.names = [s.stream for s in streams]
        self.live_old = _Cumulative(_segment_values(jobs.old_segments, jobs.start_accuracy), budget.window)
        self.live_new = _Cumulative(_segment_values(jobs.new_segments, jobs.new_accuracy), budget.window)
        own = [k for k, n in enumerate(self.names) if n in budget.stream_scales]
        rest = np.array([k for k in range(S) if k not in set(own)], dtype=int)
        self.curves = [(budget.infer_scale, rest)] + [(budget.stream_scales[self.names[k]], np.array([k])) for k in own]
        self.configs = [s.config if jobs.has_job[k] else None for k, s in enumerate(streams)]
        self.infer = np.array([s.infer_share for s in streams], dtype=float)
        self.train = np.where(jobs.has_job, [s.train_share for s in streams], 0.0)
        self.infer_device = [s.infer_device for s in streams]
        self.train_device = [s.train_device if jobs.has_job[k] else None for k, s in enumerate(streams)]
        self.seen = jobs.seen_before.copy()
        self.new = np.zeros(S, dtype=bool)
        self.remaining = jobs.cost.copy()
        self.running = jobs.has_job.copy()
        self.done_at: list[float | None] = [None] * S
        self.integral = np.zeros(S)
        self.segments: list[list[Segment]] = [[] for _ in range(S)]
        # the open segment of every stream: start, model (True = new), shares (-1 = none open yet)
        self.open_t0, self.open_new = np.zeros(S), np.zeros(S, dtype=bool)
        self.open_infer, self.open_train = np.full(S, -1.0), np.full(S, -1.0)
        self.completions: list[tuple[float, str]] = []
        self.now = 0.0

    def advance(self, t0: float, t1: float, shares_inf: np.ndarray, shares_tr: np.ndarray) -> None:
        """Integrate accuracy over [t0, t1] at constant shares and record segment changes."""
        scale = np.empty(len(self.names))
        for fn, idx in self.curves:
            scale[idx] = evaluate(fn, shares_inf[idx])
        self.integral += scale * np.where(self.new, self.live_new.between(t0, t1), self.live_old.between(t0, t1))
        changed = np.flatnonzero((self.open_infer != shares_inf) | (self.open_train != shares_tr)
                                 | (self.open_new != self.new))
        for k in changed.tolist():  # only streams whose shares or model changed (cheap at 1,000 streams)
            self._close_segment(k, t0)
        self.open_t0[changed], self.open_new[changed] = t0, self.new[changed]
        self.open_infer[changed], self.open_train[changed] = shares_inf[changed], shares_tr[changed]

    def _close_segment(self, k: int, t: float) -> None:
        """End stream k's open segment at t (if one is open and not empty)."""
        if self.open_infer[k] >= 0 and t > self.open_t0[k]:
            self.segments[k].append(Segment(float(self.open_t0[k]), t, "new" if self.open_new[k] else "old",
                                            float(self.open_infer[k]), float(self.open_train[k])))

    def play_label_delay(self, delay: float) -> None:
        """Play [0, delay): no labels yet, so no training.

        Co-located streams serve with their whole allotment, less what the micro-profiling trials
        hold from ``budget.profiling_start`` on.
        """
        S, start = len(self.names), self.budget.profiling_start
        idev, tdev, inf, tr = self.infer_device, self.train_device, self.infer, self.train
        colocated = np.array([(idev[k] is None or tdev[k] is None or idev[k] == tdev[k]) and inf[k] + tr[k] <= 1 + EPS
                              for k in range(S)], dtype=bool)
        before = np.where(colocated & self.running, inf + tr, inf)
        if start > 0:
            self.advance(0.0, start, before, np.zeros(S))
        if delay > start:
            self.advance(start, delay, before * self.budget.profiling_keep, np.zeros(S))
        self.now = delay

    def run_until_next_event(self, limit: float) -> np.ndarray:
        """Play at the current shares until the next job completes or ``limit``; return the streams finishing."""
        rate = evaluate(self.budget.train_rate, self.train)
        with np.errstate(divide="ignore", invalid="ignore"):
            left = np.where(self.running & (rate > 0), self.remaining / np.where(rate > 0, rate, 1.0), np.inf)
        # a job with no work left completes now, with or without a training share (zero-cost jobs)
        left = np.where(self.running & (self.remaining <= 0), 0.0, left)
        step = float(left.min()) if self.names else math.inf
        t, t_next = self.now, min(self.now + step, limit)
        if t_next > t:
            self.advance(t, t_next, self.infer, self.train)
        self.remaining = np.where(self.running, self.remaining - rate * (t_next - t), self.remaining)
        finishing = np.flatnonzero(self.running & (left <= (t_next - t) + 1e-9 * max(1.0, t_next)))
        self.now = t_next
        return finishing

    def complete(self, k: int, scheduler: Scheduler) -> None:
        """Stream k's job is done: its new model serves, and the scheduler re-plans the freed share."""
        self.running[k], self.remaining[k], self.new[k], self.seen[k] = False, 0.0, True, self.jobs.seen_after[k]
        self.done_at[k] = self.now
        self.completions.append((self.now, self.names[k]))
        states = self.observed()
        state = WindowState(now=self.now, completed=self.names[k], streams=states)
        shares = scheduler.on_completion(state, self.budget)
        self._set_shares(shares, states, scheduler.name)
        self.train_device[k] = None

    def check_progress(self, scheduler: Scheduler) -> None:
        """A periodic progress check: the scheduler may re-plan the running jobs."""
        if not self.running.any():
            return
        states = self.observed()
        shares = scheduler.on_progress(WindowState(now=self.now, completed=None, streams=states), self.budget)
        if shares is not None:
            self._set_shares(shares, states, scheduler.name)

    def _set_shares(self, shares: Shares, states: list[StreamState], who: str) -> None:
        arr = _check_shares(shares, states, self.budget, who, self.now)
        self.infer[:], self.train[:] = arr[:, 0], arr[:, 1]

    def observed(self) -> list[StreamState]:
        """What a deployed system knows now: validation accuracies, targets, work left by progress."""
        running, remaining = self.running, self.remaining
        started = running & (remaining < self.jobs.cost)
        left_work = np.where(running, np.where(started, remaining, self.jobs.told_cost), 0.0).tolist()
        seen, inf, tr, run, tgt = (self.seen.tolist(), self.infer.tolist(), self.train.tolist(), running.tolist(),
                                   self.jobs.told_target.tolist())
        return [
            StreamState(
                stream=self.names[j], accuracy=seen[j], infer_share=inf[j], train_share=tr[j], config=self.configs[j],
                target_accuracy=tgt[j] if run[j] else math.nan, remaining=left_work[j],
                done=not run[j], infer_device=self.infer_device[j], train_device=self.train_device[j],
            )
            for j in range(len(self.names))
        ]

    def outcome(self) -> WindowOutcome:
        """Close the open segments at the window end and score every stream."""
        T = self.budget.window
        for k in range(len(self.names)):
            self._close_segment(k, T)
        outs = {}
        for k, s in enumerate(self.streams):
            outs[s.stream] = StreamOutcome(
                stream=s.stream, config=s.config if self.jobs.has_job[k] else None,
                accuracy=float(self.integral[k] / T), completion_time=self.done_at[k],
                predicted_accuracy=s.predicted_accuracy, segments=tuple(self.segments[k]),
            )
        accuracy = float(np.mean(self.integral / T)) if self.names else math.nan
        return WindowOutcome(streams=outs, accuracy=accuracy, completions=tuple(self.completions))


def play_window(
    plan: Plan,
    truth: Sequence[StreamProfile],
    budget: Budget,
    scheduler: Scheduler,
    predicted: Sequence[StreamProfile] | None = None,
    checks: Sequence[float] = (),
) -> WindowOutcome:
    """Play ``plan`` over one window against the true profiles, re-planning as jobs progress.

    ``predicted`` (default: the truth) is what the scheduler knows: the serving models' accuracy
    (``start_accuracy``: validation accuracy in emulate) and each job's predicted target and cost.
    ``checks`` are instants at which ``scheduler.on_progress`` may re-plan the running jobs.
    """
    check_plan(plan, budget, scheduler.name)
    T, delay = budget.window, min(budget.label_delay, budget.window)
    true_by = {p.stream: p for p in truth}
    told_by = {p.stream: p for p in (predicted if predicted is not None else truth)}
    missing = [s.stream for s in plan.streams if s.stream not in true_by]
    if missing:
        raise EkyaError(f"play_window: no true profile for planned stream(s) {missing}")
    timeline = _Timeline(plan.streams, _jobs(plan.streams, true_by, told_by), budget)
    timeline.play_label_delay(delay)
    pending = sorted(c for c in checks if delay + EPS < c < T - EPS)
    while True:
        for k in timeline.run_until_next_event(min(T, pending[0] if pending else T)):
            timeline.complete(k, scheduler)
        if pending and timeline.now >= pending[0] - EPS:
            pending.pop(0)
            timeline.check_progress(scheduler)
        if timeline.now >= T - EPS:
            break
    return timeline.outcome()
