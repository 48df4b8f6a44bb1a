"""Play one window of a plan exactly, event by event (no per-second stepping).

Plans are made on predicted profiles and scored on true ones: ``truth`` gives each stream's start
accuracy and, for its planned config, the accuracy really reached and the accelerator-seconds
really needed (optionally per time segment of the window, so that the old model is scored on the
part of the window it serves and the new one on the rest). Between events every share is
constant, so accuracy integrals and job progress are exact; events are the start and end of
micro-profiling, the end of the label delay, job completions (the scheduler's ``on_completion``
re-plans) and periodic progress checks (``on_progress``).

The plan is checked before it is played, and so is every re-plan: shares in [0, 1], no accelerator
holding more than 1.0. The scheduler is told only what a deployed system could observe: the
serving models' validation accuracy (never the live ground truth), the predicted target of each
running job, and the work it has left as its progress shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ekya.errors import EkyaError
from ekya.plans.accuracy import Segment
from ekya.plans.budget import EPS
from ekya.plans.curves import evaluate
from ekya.plans.scheduler import Scheduler, Shares, StreamState, WindowState
from ekya.plans.types import Budget, Plan
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
        for kind, share, dev in (("inference", s.infer_share, s.infer_device), ("training", s.train_share, s.train_device)):
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
        raise EkyaError(f"scheduler {who!r} re-planning at t={now:.3f}s returned shares for {sorted(set(shares) ^ set(names))} "
                        "that do not match the window's streams")
    arr = np.array([shares[n] for n in names], dtype=float).reshape(len(names), 2)
    bad = np.flatnonzero((arr < -EPS).any(axis=1) | (arr > 1 + EPS).any(axis=1) | np.isnan(arr).any(axis=1))
    if bad.size:
        k = int(bad[0])
        raise EkyaError(f"scheduler {who!r}: share out of [0, 1] for stream {names[k]!r} at t={now:.3f}s: {tuple(arr[k])}")
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
    T, d = budget.window, min(budget.label_delay, budget.window)
    p0 = budget.profiling_start
    tru = {p.stream: p for p in truth}
    pred = {p.stream: p for p in (predicted if predicted is not None else truth)}
    sp = list(plan.streams)
    missing = [s.stream for s in sp if s.stream not in tru]
    if missing:
        raise EkyaError(f"play_window: no true profile for planned stream(s) {missing}")
    S = len(sp)
    a0 = np.array([tru[s.stream].start_accuracy for s in sp], dtype=float)
    a1 = a0.copy()
    old_segs: list[tuple[float, ...]] = [tru[s.stream].start_segments for s in sp]
    new_segs: list[tuple[float, ...]] = list(old_segs)
    # what a deployed system observes: the serving model's validation accuracy, before and after
    seen0 = np.array([pred[s.stream].start_accuracy if s.stream in pred else math.nan for s in sp], dtype=float)
    seen1 = seen0.copy()
    cost = np.zeros(S)
    pcost = np.zeros(S)
    ptarget = np.full(S, math.nan)
    has_job = np.zeros(S, dtype=bool)
    for k, s in enumerate(sp):
        if s.config is not None and s.train_share > EPS:
            try:
                cp = tru[s.stream].config(s.config)
            except KeyError:
                raise EkyaError(f"play_window: stream {s.stream!r} has no true profile for planned config {s.config!r}") from None
            a1[k], cost[k], has_job[k], new_segs[k] = cp.accuracy, cp.cost, True, cp.segments
            try:
                pc = pred[s.stream].config(s.config)
                ptarget[k] = pc.accuracy
                pcost[k] = pc.cost if math.isfinite(pc.cost) else cp.cost
            except KeyError:
                pcost[k] = cp.cost
            seen1[k] = cp.val_accuracy if math.isfinite(cp.val_accuracy) else ptarget[k]
    if np.isnan(a0).any() or np.isnan(a1).any() or not np.all(np.isfinite(cost)):
        raise EkyaError("play_window: true profiles must have numeric start accuracy, accuracy and cost")
    live_old = _Cumulative(_segment_values(old_segs, a0), T)
    live_new = _Cumulative(_segment_values(new_segs, a1), T)

    names = [s.stream for s in sp]
    own = [k for k, n in enumerate(names) if n in budget.stream_scales]
    rest = np.array([k for k in range(S) if k not in set(own)], dtype=int)
    curves = [(budget.infer_scale, rest)] + [(budget.stream_scales[names[k]], np.array([k])) for k in own]
    configs = [s.config if has_job[k] else None for k, s in enumerate(sp)]
    inf = np.array([s.infer_share for s in sp], dtype=float)
    tr = np.where(has_job, [s.train_share for s in sp], 0.0)
    idev = [s.infer_device for s in sp]
    tdev = [s.train_device if has_job[k] else None for k, s in enumerate(sp)]
    colocated = np.array([(idev[k] is None or tdev[k] is None or idev[k] == tdev[k]) and inf[k] + tr[k] <= 1 + EPS for k in range(S)])
    seen = seen0.copy()
    new = np.zeros(S, dtype=bool)
    rem = cost.copy()
    running = has_job.copy()
    done_at: list[float | None] = [None] * S
    integral = np.zeros(S)
    segs: list[list[Segment]] = [[] for _ in range(S)]
    # the open segment of every stream: start, model (True = new), shares (-1 = none open yet)
    o_t0, o_new, o_inf, o_tr = np.zeros(S), np.zeros(S, dtype=bool), np.full(S, -1.0), np.full(S, -1.0)
    completions: list[tuple[float, str]] = []

    def advance(t0: float, t1: float, shares_inf: np.ndarray, shares_tr: np.ndarray) -> None:
        """Integrate accuracy over [t0, t1] at constant shares and record segment changes."""
        scale = np.empty(S)
        for fn, idx in curves:
            scale[idx] = evaluate(fn, shares_inf[idx])
        integral[:] += scale * np.where(new, live_new.between(t0, t1), live_old.between(t0, t1))
        changed = np.flatnonzero((o_inf != shares_inf) | (o_tr != shares_tr) | (o_new != new))
        for k in changed:  # only streams whose shares or model changed (cheap at 1,000 streams)
            if o_inf[k] >= 0 and t0 > o_t0[k]:
                segs[k].append(Segment(float(o_t0[k]), t0, "new" if o_new[k] else "old", float(o_inf[k]), float(o_tr[k])))
        o_t0[changed], o_new[changed] = t0, new[changed]
        o_inf[changed], o_tr[changed] = shares_inf[changed], shares_tr[changed]

    def observed() -> list[StreamState]:
        """What a deployed system knows now: validation accuracies, targets, work left by progress."""
        started = running & (rem < cost)
        left_work = np.where(running, np.where(started, rem, pcost), 0.0).tolist()
        seenl, infl, trl, runl, tgt = seen.tolist(), inf.tolist(), tr.tolist(), running.tolist(), ptarget.tolist()
        return [
            StreamState(
                stream=names[j], accuracy=seenl[j], infer_share=infl[j], train_share=trl[j], config=configs[j],
                target_accuracy=tgt[j] if runl[j] else math.nan, remaining=left_work[j],
                done=not runl[j], infer_device=idev[j], train_device=tdev[j],
            )
            for j in range(S)
        ]

    # [0, d): no labels yet, so no training; co-located streams serve with their whole allotment,
    # less what the micro-profiling trials hold over [p0, d).
    before = np.where(colocated & running, inf + tr, inf)
    if p0 > 0:
        advance(0.0, p0, before, np.zeros(S))
    if d > p0:
        advance(p0, d, before * budget.profiling_keep, np.zeros(S))
    t = d
    pending = sorted(c for c in checks if d + EPS < c < T - EPS)
    while True:
        rate = evaluate(budget.train_rate, tr)
        with np.errstate(divide="ignore", invalid="ignore"):
            left = np.where(running & (rate > 0), rem / np.where(rate > 0, rate, 1.0), np.inf)
        step = float(left.min()) if S else math.inf
        t_next = min(t + step, T, pending[0] if pending else T)
        if t_next > t:
            advance(t, t_next, inf, tr)
        rem = np.where(running, rem - rate * (t_next - t), rem)
        finishing = np.flatnonzero(running & (left <= (t_next - t) + 1e-9 * max(1.0, t_next)))
        t = t_next
        for k in finishing:
            running[k], rem[k], new[k], seen[k] = False, 0.0, True, seen1[k]
            done_at[k] = t
            completions.append((t, sp[k].stream))
            states = observed()
            shares = scheduler.on_completion(WindowState(now=t, completed=sp[k].stream, streams=states), budget)
            arr = _check_shares(shares, states, budget, scheduler.name, t)
            inf[:], tr[:] = arr[:, 0], arr[:, 1]
            tdev[k] = None
        if pending and t >= pending[0] - EPS:
            pending.pop(0)
            if running.any():
                states = observed()
                shares = scheduler.on_progress(WindowState(now=t, completed=None, streams=states), budget)
                if shares is not None:
                    arr = _check_shares(shares, states, budget, scheduler.name, t)
                    inf[:], tr[:] = arr[:, 0], arr[:, 1]
        if t >= T - EPS:
            break
    for k in range(S):  # close the open segments
        if o_inf[k] >= 0 and T > o_t0[k]:
            segs[k].append(Segment(float(o_t0[k]), T, "new" if o_new[k] else "old", float(o_inf[k]), float(o_tr[k])))
    outs = {}
    for k, s in enumerate(sp):
        outs[s.stream] = StreamOutcome(
            stream=s.stream, config=s.config if has_job[k] else None, accuracy=float(integral[k] / T),
            completion_time=done_at[k], predicted_accuracy=s.predicted_accuracy, segments=tuple(segs[k]),
        )
    return WindowOutcome(streams=outs, accuracy=float(np.mean(integral / T)) if S else math.nan, completions=tuple(completions))
