"""Per-stream value tables: best window accuracy for every (inference quanta, training quanta) pair.

The window-accuracy model decomposes per stream given (I, R, config), so a scheduler can evaluate
PickConfigs once per stream and unit pair and then search allocations with table look-ups: a steal
only changes two entries. ``values[s, i, r]`` is the best accuracy of stream s with i quanta of
inference and r quanta of training (over its configs and "no retraining"); ``choice[s, i, r]`` is
the index of the chosen config in ``profiles[s].configs`` (-1 = no retraining).

Zero inference is infeasible (a floor independent of a_MIN): a stream with no inference share
serves nothing, and a plan that maximises the mean by starving one camera is not one an operator
would run. ``build_tables`` applies the floor whenever the cluster has at least one quantum per
stream (``check_quanta`` refuses the rest at plan time); ``remaining_tables`` applies it always.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ekya.errors import EkyaError
from ekya.plans.accuracy import min_instant_accuracy, no_retraining_values, retraining_integral, window_accuracy_values
from ekya.plans.curves import evaluate
from ekya.plans.packing import slice_units
from ekya.plans.quanta import total_units, units_per_accelerator
from ekya.plans.types import Budget
from ekya.profiles.types import StreamProfile

# Infeasible entries (a_MIN violated) get this value instead of -inf so that differences stay finite.
INFEASIBLE = -1e6
_CHUNK = 256  # streams per vectorised batch, to bound memory at 1,000 streams


@dataclass(frozen=True)
class ValueTables:
    """values/choice of shape (streams, U + 1, U + 1), U = quanta per accelerator."""

    values: np.ndarray
    choice: np.ndarray
    units: int

    def value(self, s: int, i: int, r: int) -> float:
        """The best accuracy of stream s at (i, r) quanta."""
        return float(self.values[s, i, r])


def grids(budget: Budget) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(U, inference scale at k quanta, training rate at k quanta, post-completion quanta[i, r])."""
    U = units_per_accelerator(budget.delta)
    shares = np.arange(U + 1) * budget.delta
    scale = evaluate(budget.infer_scale, shares)
    rate = evaluate(budget.train_rate, shares)
    i = np.arange(U + 1)[:, None]
    r = np.arange(U + 1)[None, :]
    post = np.where(i + r <= U, i + r, i)  # co-located streams get I + R after completion
    return U, scale, rate, post


def _profile_arrays(profiles: Sequence[StreamProfile], width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start accuracy[s], accuracy[s, c], cost[s, c]) with NaN / inf padding; EkyaError for unknown accuracies."""
    a0 = np.array([p.start_accuracy for p in profiles], dtype=float)
    if np.isnan(a0).any():
        bad = profiles[int(np.flatnonzero(np.isnan(a0))[0])].stream
        raise EkyaError(f"stream {bad!r}: start accuracy is unknown (NaN) but this scheduler needs profiles")
    a1 = np.full((len(profiles), width), np.nan)
    cost = np.full((len(profiles), width), np.inf)
    for k, p in enumerate(profiles):
        for c, cp in enumerate(p.configs):
            if not cp.known:
                raise EkyaError(f"stream {p.stream!r}, config {cp.config!r}: predicted accuracy is unknown (NaN) "
                                "but this scheduler needs profiles")
            a1[k, c], cost[k, c] = cp.accuracy, cp.cost
    return a0, a1, cost


def config_values(profiles: Sequence[StreamProfile], budget: Budget,
                  a_min: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(val[s, i, r, c], base[s, i, r]): window accuracy of every config and of not retraining.

    Entries that cannot happen (r = 0 with a config, padding configs, a_MIN violated, no inference
    while the cluster has a quantum per stream) are -inf.

    a_MIN: for a stream held to it, options whose lowest instantaneous accuracy (while micro-profiling
    trials hold part of its share included) falls below a_min are infeasible. A stream is held to a_min
    when its even share of the cluster (the NoRetrain baseline's allocation, ``slice_units``) would
    keep it there without retraining; so the constraints of all held streams can be met at once,
    by that allocation. A stream that cannot reach a_min even with its even share is left
    unconstrained by a_min (it does its best: holding it would mean taking other cameras' even
    shares), but it is never starved: the zero-inference floor holds regardless.
    """
    U, scale, rate, post = grids(budget)
    S = len(profiles)
    n = max((len(p.configs) for p in profiles), default=0)
    vals = np.full((S, U + 1, U + 1, max(n, 1)), -np.inf)
    bases = np.empty((S, U + 1, U + 1))
    T, d = budget.window, min(budget.label_delay, budget.window)
    rt = rate[None, :]
    floor = total_units(budget) >= S
    even = slice_units([None] * S, budget)[:, 0] if a_min > 0 and floor else np.zeros(S, dtype=np.int64)
    for lo in range(0, S, _CHUNK):
        chunk = profiles[lo : lo + _CHUNK]
        rows = scale_rows(budget, [p.stream for p in chunk])
        s_i = rows[:, :, None]  # (c, U+1, 1) over i
        s_post = rows[:, post]  # (c, U+1, U+1)
        # while micro-profiling trials run, every allotment keeps only part of its share
        prof = scale_rows(budget, [p.stream for p in chunk], budget.profiling_keep)
        s_prof = prof[:, post][..., None]
        a0, a1, cost = _profile_arrays(chunk, max(n, 1))
        valid = ~np.isnan(a1)
        a0b = a0[:, None, None, None]
        a1b = np.where(valid, a1, 0.0)[:, None, None, :]
        cb = np.where(valid, cost, np.inf)[:, None, None, :]
        sb, sdur, safter, rb = s_post[..., None], s_i[..., None], s_post[..., None], rt[None, :, :, None]
        with np.errstate(invalid="ignore"):
            val = window_accuracy_values(a0b, a1b, cb, sb, sdur, safter, rb, T, d, s_prof, budget.profiling_start)
        val = np.where(valid[:, None, None, :] & (np.arange(U + 1)[None, None, :, None] > 0), val, -np.inf)
        base = no_retraining_values(a0[:, None, None], s_i, prof[:, :, None], budget) * np.ones((1, 1, U + 1))
        if a_min > 0:
            with np.errstate(divide="ignore", invalid="ignore"):
                dur = np.where(rb > 0, cb / np.where(rb > 0, rb, 1.0), np.inf)
            completes = d + dur <= T
            low = min_instant_accuracy(a0b, a1b, sb, sdur, safter, completes, d, T,
                                       s_prof if budget.profiling_keep < 1 else None)
            ok_cfg = low >= a_min - 1e-12
            # not retraining: the serving model at the stream's share, and less while trials run
            low_base = a0[:, None, None] * s_i
            if budget.profiling_keep < 1 and budget.profiling_span > 0:
                low_base = np.minimum(low_base, a0[:, None, None] * prof[:, :, None])
            ok_base = (low_base >= a_min - 1e-12) & np.ones((1, 1, U + 1), dtype=bool)
            held = ok_base[np.arange(len(chunk)), even[lo : lo + len(chunk)], 0]
            val = np.where(ok_cfg | ~held[:, None, None, None], val, -np.inf)
            base = np.where(ok_base | ~held[:, None, None], base, -np.inf)
        vals[lo : lo + len(chunk)] = val
        bases[lo : lo + len(chunk)] = base
    if floor:
        vals[:, 0] = -np.inf
        bases[:, 0] = -np.inf
    return vals, bases


def _select(val: np.ndarray, base: np.ndarray, U: int) -> ValueTables:
    best_c = np.argmax(val, axis=3)
    best_v = np.take_along_axis(val, best_c[..., None], axis=3)[..., 0]
    use = best_v > base + 1e-12  # retrain only if strictly better than not retraining
    v = np.where(use, best_v, base)
    return ValueTables(values=np.where(np.isfinite(v), v, INFEASIBLE),
                       choice=np.where(use, best_c, -1).astype(np.int32), units=U)


def relaxed(tables: ValueTables, loose: ValueTables) -> ValueTables:
    """``tables`` where its entries are feasible, ``loose`` (the same tables without a_MIN) where not."""
    ok = tables.values > INFEASIBLE / 2
    return ValueTables(values=np.where(ok, tables.values, loose.values),
                       choice=np.where(ok, tables.choice, loose.choice), units=tables.units)


def scale_rows(budget: Budget, names: Sequence[str], keep: float = 1.0) -> np.ndarray:
    """Inference scale at 0..U quanta (times ``keep``) for each named stream (shape streams x (U + 1))."""
    U = units_per_accelerator(budget.delta)
    shares = np.arange(U + 1) * budget.delta * keep
    rows = np.repeat(evaluate(budget.infer_scale, shares)[None, :], len(names), axis=0)
    for k, n in enumerate(names):
        if n in budget.stream_scales:
            rows[k] = evaluate(budget.stream_scales[n], shares)
    return rows


def build_tables(profiles: Sequence[StreamProfile], budget: Budget, a_min: float = 0.0) -> ValueTables:
    """Value tables for the window start: PickConfigs (best config or none) for every (i, r)."""
    val, base = config_values(profiles, budget, a_min)
    return _select(val, base, units_per_accelerator(budget.delta))


def fixed_tables(val: np.ndarray, base: np.ndarray, picks: Sequence[int]) -> ValueTables:
    """Value tables when each stream's config is fixed (picks[s] = config index, -1 = none)."""
    U = val.shape[1] - 1
    masked = np.full_like(val, -np.inf)
    for s, c in enumerate(picks):
        if c >= 0:
            masked[s, :, :, c] = val[s, :, :, c]
    return _select(masked, base, U)


def remaining_tables(
    accuracy: np.ndarray,
    target: np.ndarray,
    remaining: np.ndarray,
    running: np.ndarray,
    now: float,
    budget: Budget,
    names: Sequence[str] | None = None,
    inference_floor: bool = True,
    a_min: float = 0.0,
    held_at: np.ndarray | None = None,
) -> ValueTables:
    """Value tables for the rest of a window [now, T] (re-planning at a completion).

    Per stream: the serving accuracy, the running job's predicted target accuracy and remaining
    work; streams without a running job only have inference. Values are integrals divided by T
    so they add up like window accuracies. ``inference_floor``: zero inference is infeasible.
    ``a_min`` with ``held_at`` (the quanta each stream holds now): a stream whose current quanta keep
    its accuracy at or above a_min for the rest of the window is kept there (options that would
    drop it below are infeasible); the others are left unconstrained, as at the window start.
    """
    U, scale, rate, post = grids(budget)
    T = budget.window
    rows = scale_rows(budget, names) if names is not None else scale[None, :]
    s_i = rows[:, :, None]
    s_post = rows[:, post]
    rt = rate[None, None, :]
    acc = np.asarray(accuracy, dtype=float)[:, None, None]
    tgt = np.where(np.isnan(target), 0.0, target)[:, None, None]
    work = np.asarray(remaining, dtype=float)[:, None, None]
    val = retraining_integral(acc, tgt, work, s_i, s_post, rt, now, T) / T
    base = acc * s_i * max(T - now, 0.0) / T * np.ones((1, 1, U + 1))
    run = np.asarray(running, dtype=bool)[:, None, None]
    values = np.where(run, val, base)
    if a_min > 0 and held_at is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            dur = np.where(rt > 0, work / np.where(rt > 0, rt, 1.0), np.inf)
        after = np.where(run & (now + dur <= T + 1e-9), tgt * s_post, np.inf)
        ok = np.minimum(acc * s_i, after) >= a_min - 1e-12
        at = np.asarray(held_at, dtype=np.int64).reshape(-1, 2)
        held = ok[np.arange(ok.shape[0]), at[:, 0], at[:, 1]]
        values = np.where(ok | ~held[:, None, None], values, INFEASIBLE)
    if inference_floor:
        values[:, 0] = INFEASIBLE
    choice = np.where(run, 0, -1).astype(np.int32) * np.ones((1, U + 1, U + 1), dtype=np.int32)
    return ValueTables(values=values, choice=choice, units=U)

