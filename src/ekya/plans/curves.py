"""The two share curves of the scheduling model: inference accuracy scale and training throughput.

Both are callables of a share (fraction of one accelerator) that accept a Python float (fast,
pure-Python path) or a numpy array (vectorised path), so they can be used directly as
``Budget.infer_scale`` and ``Budget.train_rate``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from ekya.errors import EkyaError

# The original's measured accuracy-vs-subsampling table (real_inference_profiles.csv, column c1).
DEFAULT_SUBSAMPLING: tuple[float, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
DEFAULT_RELATIVE_ACCURACY: tuple[float, ...] = (1, 0.78, 0.64, 0.60, 0.44, 0.42, 0.41, 0.33, 0.28, 0.15, 0.12, 0.04)
DEFAULT_MAX_INFERENCE_SHARE = 0.25

# The original's MPS benchmark (ResNet18, batch 8): mean seconds per task at 10%..100% of a GPU.
MPS_SHARES: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MPS_SECONDS_PER_TASK: tuple[float, ...] = (15.19, 10.73, 8.42, 7.35, 6.56, 6.37, 6.32, 5.61, 5.58, 5.46)


def _interp_scalar(x: float, xp: tuple[float, ...], fp: tuple[float, ...], left: float, right: float) -> float:
    """np.interp for one float without numpy's per-call overhead."""
    if x < xp[0]:
        return left
    if x > xp[-1]:
        return right
    j = bisect.bisect_right(xp, x)
    if j >= len(xp):
        return fp[-1]
    x0, x1 = xp[j - 1], xp[j]
    y0, y1 = fp[j - 1], fp[j]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


@dataclass(frozen=True)
class InferenceCurve:
    """Inference accuracy multiplier as a function of the inference share (the original's model).

    With share I < max_share the stream cannot keep up with the frame rate and must subsample by
    x = max_share / I; accuracy is scaled by the table's relative accuracy at x (linear
    interpolation), 1.0 for x <= first factor and 0 beyond the last factor (too few frames).
    Unlike the original we do not add 1e-6 to I: a zero share is exactly 0 accuracy.
    """

    subsampling: tuple[float, ...] = DEFAULT_SUBSAMPLING
    relative_accuracy: tuple[float, ...] = DEFAULT_RELATIVE_ACCURACY
    max_share: float = DEFAULT_MAX_INFERENCE_SHARE

    def __post_init__(self) -> None:
        xp = tuple(float(v) for v in self.subsampling)
        fp = tuple(float(v) for v in self.relative_accuracy)
        if len(xp) != len(fp) or len(xp) < 1:
            raise EkyaError("inference curve: 'subsampling' and 'relative_accuracy' must be non-empty and "
                            "of equal length")
        if any(b <= a for a, b in zip(xp, xp[1:])) or xp[0] < 1:
            raise EkyaError("inference curve: 'subsampling' factors must be increasing and >= 1")
        if any(not 0.0 <= v <= 1.0 for v in fp):
            raise EkyaError("inference curve: 'relative_accuracy' values must lie in [0, 1]")
        if not self.max_share > 0:
            raise EkyaError(f"inference curve: 'max_share' must be > 0, got {self.max_share}")
        object.__setattr__(self, "subsampling", xp)
        object.__setattr__(self, "relative_accuracy", fp)

    @overload
    def __call__(self, share: float) -> float: ...
    @overload
    def __call__(self, share: np.ndarray) -> np.ndarray: ...

    def __call__(self, share: float | np.ndarray) -> float | np.ndarray:
        """Accuracy multiplier in [0, 1] at inference share(s) ``share``."""
        xp, fp = self.subsampling, self.relative_accuracy
        if isinstance(share, (float, int)):
            if share <= 0:
                return 0.0
            return _interp_scalar(self.max_share / share, xp, fp, fp[0], 0.0)
        s = np.asarray(share, dtype=float)
        with np.errstate(divide="ignore"):
            x = np.where(s > 0, self.max_share / np.where(s > 0, s, 1.0), np.inf)
        return np.interp(x, xp, fp, left=fp[0], right=0.0)


#: throughput kinds: the measured lone-job curve bounded by the device's capacity, proportional
#: scaling, and the original's curve applied to every job independently (non-conserving)
THROUGHPUT_KINDS = ("mps", "linear", "original_mps")
#: the device's default capacity for concurrent work, in lone-job units at a full share (1 = linear)
DEFAULT_CAPACITY = 1.0


@dataclass(frozen=True)
class TrainThroughput:
    """Relative training throughput (accelerator-seconds of progress per second) vs training share.

    The table (``shares``, ``seconds_per_task``) is a *lone-job* curve: one job running alone at a
    share, as the original measured it (ResNet18, batch 8, 10-100 % MPS), or as the calibrate
    benchmark and the accelerator check measure it. lone(s) = t(1.0) / t(s), 0 at 0, piecewise-linear
    in between, flat beyond the last share, made monotone by a running maximum (a noisy user table
    can never make more share slower).

    ``kind='mps'`` (physical): jobs sharing one accelerator never do more work together than the
    device sustains. ``capacity`` is that work in lone-job units at a full share (1 = one job holding
    the whole device; the accelerator check measures it from two jobs at 30 % and 70 % run at
    once). A job at share s is one slice of a saturated device (ekya always hands out the whole
    device), so it runs at min(lone(s), capacity * s): the curve where a job alone cannot use its
    slice, its slice of the capacity otherwise. Summed over a device's jobs this never exceeds
    capacity. With capacity 1 and the original's curve (lone(s) >= s everywhere) it equals linear.
    ``kind='linear'``: rate(s) = s (the original simulator's assumption; the table is ignored).
    ``kind='original_mps'``: rate(s) = lone(s) for every job independently, as the original's
    runtime model credited it: N jobs at small shares together do up to ~3.6x one device's work.
    Kept to reproduce the original and labelled non-conserving; never a physical default.
    """

    kind: str = "mps"
    shares: tuple[float, ...] = MPS_SHARES
    seconds_per_task: tuple[float, ...] = MPS_SECONDS_PER_TASK
    capacity: float = DEFAULT_CAPACITY
    _xp: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _fp: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in THROUGHPUT_KINDS:
            raise EkyaError(f"cluster.throughput must be one of {list(THROUGHPUT_KINDS)}, got {self.kind!r}")
        if not (isinstance(self.capacity, (int, float)) and math.isfinite(self.capacity) and self.capacity > 0):
            raise EkyaError(f"cluster.capacity must be a number > 0 (lone-job units a saturated device sustains; "
                            f"1 = linear), got {self.capacity!r}")
        sh = tuple(float(v) for v in self.shares)
        ts = tuple(float(v) for v in self.seconds_per_task)
        if len(sh) != len(ts) or not sh or any(b <= a for a, b in zip(sh, sh[1:])) or sh[0] <= 0:
            raise EkyaError("throughput table: 'shares' must be increasing, positive and as long as 'seconds_per_task'")
        if any(t <= 0 for t in ts):
            raise EkyaError("throughput table: 'seconds_per_task' must be positive")
        ref = ts[-1]
        rates = np.maximum.accumulate(np.array([ref / t for t in ts]))
        object.__setattr__(self, "capacity", float(self.capacity))
        object.__setattr__(self, "_xp", (0.0,) + sh)
        object.__setattr__(self, "_fp", (0.0,) + tuple(float(r) for r in rates))

    @property
    def conserving(self) -> bool:
        """Whether jobs sharing a device together never exceed its capacity (false only for original_mps)."""
        return self.kind != "original_mps"

    def lone(self, share: float) -> float:
        """The rate of one job running alone at ``share`` (the measured curve itself)."""
        if share <= 0:
            return 0.0
        return _interp_scalar(float(share), self._xp, self._fp, 0.0, self._fp[-1])

    @overload
    def __call__(self, share: float) -> float: ...
    @overload
    def __call__(self, share: np.ndarray) -> np.ndarray: ...

    def __call__(self, share: float | np.ndarray) -> float | np.ndarray:
        """Relative training rate at training share(s) ``share``."""
        if isinstance(share, (float, int)):
            if share <= 0:
                return 0.0
            if self.kind == "linear":
                return float(share)
            lone = _interp_scalar(float(share), self._xp, self._fp, 0.0, self._fp[-1])
            return lone if self.kind == "original_mps" else min(lone, self.capacity * float(share))
        s = np.asarray(share, dtype=float)
        if self.kind == "linear":
            return np.maximum(s, 0.0)
        lone_rates = np.interp(s, self._xp, self._fp, left=0.0, right=self._fp[-1])
        if self.kind == "original_mps":
            return lone_rates
        return np.minimum(lone_rates, self.capacity * np.maximum(s, 0.0))


def evaluate(fn: Callable[[Any], Any], shares: np.ndarray) -> np.ndarray:
    """Evaluate a share curve on an array, falling back to element-wise calls for scalar-only callables."""
    shares = np.asarray(shares, dtype=float)
    try:
        out = np.asarray(fn(shares), dtype=float)
        if out.shape == shares.shape:
            return out
    except (TypeError, ValueError):
        pass
    return np.array([float(fn(float(s))) for s in shares.ravel()], dtype=float).reshape(shares.shape)
