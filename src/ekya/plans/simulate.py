"""Play one window of a plan exactly, event by event (no per-second stepping).

Plans are made on predicted profiles and scored on true ones: ``truth`` gives each stream's start
accuracy and, for its planned config, the accuracy really reached and the accelerator-seconds
really needed. Between events every share is constant, so accuracy integrals and job progress are
exact; events are the end of the label delay and job completions, at which the scheduler's
``on_completion`` re-plans the shares.
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


def _check_shares(shares: Shares, states: list[StreamState], budget: Budget, who: str, now: float) -> None:
    names = {s.stream for s in states}
    if set(shares) != names:
        raise EkyaError(f"scheduler {who!r} on_completion at t={now:.3f}s returned shares for {sorted(set(shares) ^ names)} "
                        "that do not match the window's streams")
    used: dict[int, float] = {}
    total = 0.0
    for s in states:
        i, r = shares[s.stream]
        if i < -EPS or r < -EPS or i > 1 + EPS or r > 1 + EPS:
            raise EkyaError(f"scheduler {who!r}: share out of [0, 1] for stream {s.stream!r} at t={now:.3f}s: ({i}, {r})")
        if s.done and r > EPS:
            raise EkyaError(f"scheduler {who!r}: stream {s.stream!r} has no running job but got training share {r}")
        total += i + r
        for dev, v in ((s.infer_device, i), (s.train_device, r)):
            if dev is not None and v > EPS:
                used[dev] = used.get(dev, 0.0) + v
    if total > budget.capacity + 1e-6 or any(v > 1 + 1e-6 for v in used.values()):
        raise EkyaError(f"scheduler {who!r}: re-planned shares at t={now:.3f}s over-subscribe the accelerators")


def play_window(
    plan: Plan,
    truth: Sequence[StreamProfile],
    budget: Budget,
    scheduler: Scheduler,
    predicted: Sequence[StreamProfile] | None = None,
) -> WindowOutcome:
    """Play ``plan`` over one window against the true profiles, re-planning at each completion.

    ``predicted`` (default: the truth) supplies what the scheduler is told about running jobs in
    ``WindowState`` (target accuracy, remaining work = predicted cost x fraction left).
    """
    T, d = budget.window, min(budget.label_delay, budget.window)
    tru = {p.stream: p for p in truth}
    pred = {p.stream: p for p in (predicted if predicted is not None else truth)}
    sp = list(plan.streams)
    missing = [s.stream for s in sp if s.stream not in tru]
    if missing:
        raise EkyaError(f"play_window: no true profile for planned stream(s) {missing}")
    S = len(sp)
    a0 = np.array([tru[s.stream].start_accuracy for s in sp], dtype=float)
    a1 = a0.copy()
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
            a1[k], cost[k], has_job[k] = cp.accuracy, cp.cost, True
            try:
                pc = pred[s.stream].config(s.config)
                ptarget[k] = pc.accuracy if pc.known else cp.accuracy
                pcost[k] = pc.cost if math.isfinite(pc.cost) else cp.cost
            except KeyError:
                ptarget[k], pcost[k] = cp.accuracy, cp.cost
    if np.isnan(a0).any() or np.isnan(a1).any() or not np.all(np.isfinite(cost)):
        raise EkyaError("play_window: true profiles must have numeric start accuracy, accuracy and cost")

    inf = np.array([s.infer_share for s in sp], dtype=float)
    tr = np.where(has_job, [s.train_share for s in sp], 0.0)
    idev = [s.infer_device for s in sp]
    tdev = [s.train_device if has_job[k] else None for k, s in enumerate(sp)]
    colocated = np.array([(idev[k] is None or tdev[k] is None or idev[k] == tdev[k]) and inf[k] + tr[k] <= 1 + EPS for k in range(S)])
    acc = a0.copy()
    new = np.zeros(S, dtype=bool)
    rem = cost.copy()
    running = has_job.copy()
    done_at: list[float | None] = [None] * S
    integral = np.zeros(S)
    segs: list[list[Segment]] = [[] for _ in range(S)]
    seg_open = [(0.0, "old", -1.0, -1.0)] * S  # (t0, model, infer, train) of the open segment
    completions: list[tuple[float, str]] = []

    def advance(t0: float, t1: float, shares_inf: np.ndarray, shares_tr: np.ndarray) -> None:
        """Integrate accuracy over [t0, t1] at constant shares and record segment changes."""
        dt = t1 - t0
        integral[:] += acc * evaluate(budget.infer_scale, shares_inf) * dt
        for k in range(S):
            o = seg_open[k]
            model = "new" if new[k] else "old"
            if o[2] != shares_inf[k] or o[3] != shares_tr[k] or o[1] != model:
                if o[2] >= 0 and t0 > o[0]:
                    segs[k].append(Segment(o[0], t0, o[1], o[2], o[3]))
                seg_open[k] = (t0, model, float(shares_inf[k]), float(shares_tr[k]))

    # [0, d): no labels yet, so no training; co-located streams serve with their whole allotment.
    if d > 0:
        advance(0.0, d, np.where(colocated & running, inf + tr, inf), np.zeros(S))
    t = d
    while True:
        rate = evaluate(budget.train_rate, tr)
        with np.errstate(divide="ignore", invalid="ignore"):
            left = np.where(running & (rate > 0), rem / np.where(rate > 0, rate, 1.0), np.inf)
        step = float(left.min()) if S else math.inf
        t_next = min(t + step, T)
        if t_next > t:
            advance(t, t_next, inf, tr)
        rem = np.where(running, rem - rate * (t_next - t), rem)
        finishing = np.flatnonzero(running & (left <= (t_next - t) + 1e-9 * max(1.0, t_next)))
        t = t_next
        for k in finishing:
            running[k], rem[k], acc[k], new[k] = False, 0.0, a1[k], True
            done_at[k] = t
            completions.append((t, sp[k].stream))
            states = [
                StreamState(
                    stream=sp[j].stream, accuracy=float(acc[j]), infer_share=float(inf[j]), train_share=float(tr[j]),
                    config=sp[j].config if has_job[j] else None,
                    target_accuracy=float(ptarget[j]) if running[j] else math.nan,
                    remaining=float(pcost[j] * rem[j] / cost[j]) if running[j] and cost[j] > 0 else 0.0,
                    done=not running[j], infer_device=idev[j], train_device=tdev[j],
                )
                for j in range(S)
            ]
            shares = scheduler.on_completion(WindowState(now=t, completed=sp[k].stream, streams=states), budget)
            _check_shares(shares, states, budget, scheduler.name, t)
            for j in range(S):
                inf[j], tr[j] = shares[sp[j].stream]
            tdev[k] = None
        if t >= T - EPS:
            break
    for k in range(S):  # close the open segments
        o = seg_open[k]
        if o[2] >= 0 and T > o[0]:
            segs[k].append(Segment(o[0], T, o[1], o[2], o[3]))
    outs = {}
    for k, s in enumerate(sp):
        outs[s.stream] = StreamOutcome(
            stream=s.stream, config=s.config if has_job[k] else None, accuracy=float(integral[k] / T),
            completion_time=done_at[k], predicted_accuracy=s.predicted_accuracy, segments=tuple(segs[k]),
        )
    return WindowOutcome(streams=outs, accuracy=float(np.mean(integral / T)) if S else math.nan, completions=tuple(completions))
