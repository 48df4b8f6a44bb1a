"""Per-stream value tables: best window accuracy for every (inference quanta, training quanta) pair.

The window-accuracy model decomposes per stream given (I, R, config), so a scheduler can evaluate
PickConfigs once per stream and unit pair and then search allocations with table look-ups: a steal
only changes two entries. ``values[s, i, r]`` is the best accuracy of stream s with i quanta of
inference and r quanta of training (over its configs and "no retraining"); ``choice[s, i, r]`` is
the index of the chosen config in ``profiles[s].configs`` (-1 = no retraining).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ekya.errors import EkyaError
from ekya.plans.accuracy import min_instant_accuracy, no_retraining_values, retraining_integral, window_accuracy_values
from ekya.plans.curves import evaluate
from ekya.plans.quanta import units_per_accelerator
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

    Entries that cannot happen (r = 0 with a config, padding configs, a_MIN violated) are -inf.
    a_MIN: options whose lowest instantaneous accuracy falls below a_min are infeasible; a stream
    that cannot meet a_min with any option is left unconstrained (it does its best).
    """
    U, scale, rate, post = grids(budget)
    S = len(profiles)
    n = max((len(p.configs) for p in profiles), default=0)
    vals = np.full((S, U + 1, U + 1, max(n, 1)), -np.inf)
    bases = np.empty((S, U + 1, U + 1))
    T, d = budget.window, min(budget.label_delay, budget.window)
    rt = rate[None, :]
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
            ok_base = base >= a_min - 1e-12
            feasible = ok_base.any(axis=(1, 2)) | (ok_cfg & np.isfinite(val)).any(axis=(1, 2, 3))
            val = np.where(ok_cfg | ~feasible[:, None, None, None], val, -np.inf)
            base = np.where(ok_base | ~feasible[:, None, None], base, -np.inf)
        vals[lo : lo + len(chunk)] = val
        bases[lo : lo + len(chunk)] = base
    return vals, bases


def _select(val: np.ndarray, base: np.ndarray, U: int) -> ValueTables:
    best_c = np.argmax(val, axis=3)
    best_v = np.take_along_axis(val, best_c[..., None], axis=3)[..., 0]
    use = best_v > base + 1e-12  # retrain only if strictly better than not retraining
    v = np.where(use, best_v, base)
    return ValueTables(values=np.where(np.isfinite(v), v, INFEASIBLE),
                       choice=np.where(use, best_c, -1).astype(np.int32), units=U)


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
) -> ValueTables:
    """Value tables for the rest of a window [now, T] (re-planning at a completion).

    Per stream: the serving accuracy, the running job's predicted target accuracy and remaining
    work; streams without a running job only have inference. Values are integrals divided by T
    so they add up like window accuracies.
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
    choice = np.where(run, 0, -1).astype(np.int32) * np.ones((1, U + 1, U + 1), dtype=np.int32)
    return ValueTables(values=values, choice=choice, units=U)

