"""THE window-accuracy model (the paper's EstimateAccuracy), shared by every scheduler and executor.

One stream, one window [0, T], label delay d, old-model accuracy a0, retraining config reaching a1
after C accelerator-seconds, inference share I and training share R:

* [0, d): teacher labels are not ready, so no training runs; the stream's whole allotment serves
  inference at the old model's accuracy: a0 * scale(I + R) when the two jobs are co-located.
  When the scheduler micro-profiles, the trials take the last part of that interval,
  [p, d) with p = ``Budget.profiling_start``, and hold ``profiling_fraction`` of every accelerator:
  inference then serves at a0 * scale((I + R) * (1 - profiling_fraction)). Profiling is paid for
  in inference accuracy, not only in a later start of retraining.
* [d, t_c): training runs at rate train_rate(R) and completes at t_c = d + C / train_rate(R); the old
  model serves at a0 * scale(I).
* [t_c, T]: the new model serves and the finished job's share goes to the stream's own inference:
  a1 * scale(I + R). A job that would finish after T never helps (checkpoint at completion only).

"Co-located" means I + R fits on one accelerator (I + R <= 1), which the packer guarantees by
placing such a stream's two jobs on the same device; when I + R > 1 the jobs sit on different
devices and the stream's inference keeps I (the freed share benefits others, which this
per-stream model conservatively ignores). This rule is what keeps the model exact per stream.

The window accuracy is the exact time average over [0, T] (an integral of a piecewise-constant
function). The original sampled integer seconds 0..T (T + 1 samples), which over-weights the window
end by 1/(T+1) and rounds completion instants to whole seconds; differences are below 1/T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ekya.plans.curves import evaluate
from ekya.plans.quanta import EPS
from ekya.plans.types import Budget


@dataclass(frozen=True)
class Segment:
    """A stretch [t0, t1) of one stream's window with constant model and shares."""

    t0: float
    t1: float
    model: Literal["old", "new"]
    infer_share: float
    train_share: float


def post_share(infer: np.ndarray | float, train: np.ndarray | float) -> np.ndarray | float:
    """Inference share once training is done (or before it starts): I + R if co-located, else I."""
    total = np.add(infer, train)
    if isinstance(total, np.ndarray):
        return np.where(total <= 1.0 + EPS, total, infer)
    return total if total <= 1.0 + EPS else infer


def retraining_integral(
    a_old: np.ndarray | float,
    a_new: np.ndarray | float,
    work: np.ndarray | float,
    scale_during: np.ndarray | float,
    scale_after: np.ndarray | float,
    rate: np.ndarray | float,
    t0: float,
    t1: float,
) -> np.ndarray:
    """Integral over [t0, t1] of inference accuracy while a job with ``work`` left runs from t0 at ``rate``."""
    span = max(t1 - t0, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        running = np.asarray(rate) > 0
        dur = np.where(running, np.asarray(work, dtype=float) / np.where(running, rate, 1.0), np.inf)
    done = dur <= span + EPS
    d = np.minimum(dur, span)
    old = np.multiply(a_old, scale_during)
    new = np.multiply(a_new, scale_after)
    return np.where(done, old * d + new * np.maximum(span - d, 0.0), old * span)


def window_accuracy(
    a0: np.ndarray | float,
    a1: np.ndarray | float,
    cost: np.ndarray | float,
    infer: np.ndarray | float,
    train: np.ndarray | float,
    budget: Budget,
    stream: str | None = None,
) -> np.ndarray | float:
    """Time-averaged inference accuracy over the window (broadcasts over numpy arrays).

    ``train == 0`` means no retraining (a1 and cost are then ignored); ``stream`` selects its own
    inference curve when the budget has one.
    """
    scalar = all(np.ndim(v) == 0 for v in (a0, a1, cost, infer, train))
    infer_a = np.asarray(infer, dtype=float)
    train_a = np.asarray(train, dtype=float)
    post = np.asarray(post_share(np.atleast_1d(infer_a), np.atleast_1d(train_a)))
    post = post.reshape(np.broadcast(infer_a, train_a).shape)
    curve = budget.scale_for(stream)
    s_i = evaluate(curve, infer_a)
    s_post = evaluate(curve, post)
    rate = evaluate(budget.train_rate, train_a)
    s_prof = evaluate(curve, post * budget.profiling_keep)
    out = window_accuracy_values(a0, a1, cost, s_post, s_i, s_post, rate, budget.window, budget.label_delay,
                                 s_prof, budget.profiling_start)
    unchanged = no_retraining_values(a0, s_i, evaluate(curve, infer_a * budget.profiling_keep), budget)
    out = np.where(train_a > 0, out, unchanged)
    return float(out) if scalar else out


def no_retraining_values(a0: np.ndarray | float, scale: np.ndarray | float, scale_profiling: np.ndarray | float,
                         budget: Budget) -> np.ndarray:
    """Window accuracy of a stream that does not retrain: inference keeps its share, less what trials hold."""
    served = np.multiply(a0, scale)
    held = budget.profiling_span if budget.profiling_keep < 1 else 0.0
    if held <= 0:
        return served
    return (served * (budget.window - held) + np.multiply(a0, scale_profiling) * held) / budget.window


def window_accuracy_values(
    a0: np.ndarray | float,
    a1: np.ndarray | float,
    cost: np.ndarray | float,
    scale_before: np.ndarray | float,
    scale_during: np.ndarray | float,
    scale_after: np.ndarray | float,
    rate: np.ndarray | float,
    window: float,
    delay: float,
    scale_profiling: np.ndarray | float | None = None,
    profiling_start: float | None = None,
) -> np.ndarray:
    """Window accuracy from pre-evaluated curve values (the fast path used to build value tables).

    ``scale_profiling`` applies over [profiling_start, delay), while micro-profiling trials hold part
    of the accelerators (see the module docstring); by default nothing is profiled.
    """
    d = min(max(delay, 0.0), window)
    p = d if profiling_start is None or scale_profiling is None else min(max(profiling_start, 0.0), d)
    before = np.multiply(a0, scale_before) * p
    if p < d and scale_profiling is not None:  # p < d only when scale_profiling is given
        before = before + np.multiply(a0, scale_profiling) * (d - p)
    total = before + retraining_integral(a0, a1, cost, scale_during, scale_after, rate, d, window)
    return total / window


def completion_time(cost: float, train: float, budget: Budget) -> float | None:
    """When a job of ``cost`` accelerator-seconds started at the label delay finishes (None: not in the window)."""
    rate = budget.train_rate(float(train))
    if rate <= 0:
        return None
    t = budget.label_delay + cost / rate
    return t if t <= budget.window + EPS else None


def min_instant_accuracy(
    a0: np.ndarray | float,
    a1: np.ndarray | float,
    scale_before: np.ndarray | float,
    scale_during: np.ndarray | float,
    scale_after: np.ndarray | float,
    completes: np.ndarray | bool,
    delay: float,
    window: float,
    scale_profiling: np.ndarray | float | None = None,
) -> np.ndarray:
    """Lowest instantaneous inference accuracy over the window (for the a_MIN constraint)."""
    during = np.multiply(a0, scale_during)
    low = during
    if delay > 0:
        low = np.minimum(low, np.multiply(a0, scale_before))
        if scale_profiling is not None:
            low = np.minimum(low, np.multiply(a0, scale_profiling))
    after = np.where(completes, np.multiply(a1, scale_after), math.inf)
    return np.minimum(low, after)
