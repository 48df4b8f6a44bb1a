"""Continual-learning metrics over one camera's accuracy matrix, with the windowing's label lag.

R has shape (N+1, N): row i is the model serving at the end of window i (row 0 = the base model),
column j-1 is window j's probe (j = 1..N). With lag λ, the first model trained on window j is row
ℓ(j) = j + λ; our windowing has λ = 1 (the model serving at the end of window j trained on windows
≤ j-1 only); λ = 0 gives the textbook library formulas, which assume row j has just learnt window j.

J = {1..N-1-λ} are the windows that some row after ℓ(j), but before the last, could still forget.
NaN marks a metric that is undefined (too few windows) or a probe with no labelled sample.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ekya.errors import EkyaError

#: the metrics ``continual_metrics`` returns, in a fixed order (their MLflow keys get a ``cl_`` prefix)
METRICS = ("live_accuracy", "start_accuracy", "window_gain", "final_accuracy", "final_accuracy_micro",
           "incremental_accuracy", "bwt", "forgetting", "forgetting_clipped", "fwt", "gain_over_base")

#: our windowing's label lag: the model serving at the end of window j never trained on window j
LAG = 1


@dataclass(frozen=True)
class AccuracyMatrix:
    """One camera's probe accuracies so far: ``values[i][j-1]`` = row i's model on window j's probe."""

    camera: str
    #: shape (rows played, N): rows 0..i once window i is played; N = the run's last window
    values: np.ndarray
    #: labelled samples in each window's probe (weights of the micro-averaged final accuracy)
    probe_sizes: tuple[int, ...]

    @property
    def played(self) -> int:
        """The last row present (the last window played; 0 = only the base model)."""
        return len(self.values) - 1

    def through(self, window: int) -> np.ndarray:
        """The (window+1, window) matrix of a run that ended at ``window``: rows 0..window, windows 1..window."""
        return self.values[:window + 1, :window]


def _mean(values: Iterable[float]) -> float:
    """Mean over the defined values; NaN when there are none."""
    arr = np.asarray(list(values), dtype=float)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else math.nan


def continual_metrics(matrix: np.ndarray, lag: int = LAG, sizes: Iterable[int] | None = None) -> dict[str, float]:
    """The metrics of one camera's (N+1, N) matrix (module doc); ``sizes`` weights ``final_accuracy_micro``."""
    R = np.asarray(matrix, dtype=float)
    if R.ndim != 2 or R.shape[1] < 1 or R.shape[0] != R.shape[1] + 1:
        raise EkyaError(f"accuracy matrix of shape {R.shape}: must be (N+1, N) with N >= 1 "
                        "(rows: base model and the model at the end of each window; columns: windows 1..N)")
    if int(lag) != lag or lag < 0:
        raise EkyaError(f"lag={lag}: must be an integer >= 0")
    lag = int(lag)
    N = R.shape[1]

    def r(i: int, j: int) -> float:  # j is the window index, 1-based like the definitions
        return R[i, j - 1]

    windows = range(1, N + 1)
    live = _mean(r(j, j) for j in windows)
    start = _mean(r(j - 1, j) for j in windows)
    final = _mean(r(N, j) for j in windows)
    micro = math.nan
    if sizes is not None:
        w = np.asarray(list(sizes), dtype=float)
        if w.shape != (N,):
            raise EkyaError(f"probe sizes {w.tolist()}: need one per window 1..{N}")
        ok = ~np.isnan(R[N]) & (w > 0)
        micro = float((R[N][ok] * w[ok]).sum() / w[ok].sum()) if ok.any() else math.nan
    incremental = _mean(_mean(r(i, j) for j in range(1, i + 1)) for i in windows)
    # windows that a row after their first training row, other than the last, exists for
    J = range(1, N - lag)
    bwt = _mean(r(N, j) - r(j + lag, j) for j in J) if len(J) else math.nan
    drops = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: an empty probe
        for j in J:
            drops.append(float(np.nanmax(R[j + lag:N, j - 1])) - r(N, j))
    forgetting = _mean(drops) if len(J) else math.nan
    clipped = _mean(max(d, 0.0) if not math.isnan(d) else d for d in drops) if len(J) else math.nan
    # forward transfer: the last model not trained on window j against the base model, over windows whose
    # pre-training model has been retrained at least once (row ℓ(j)-1 >= 1): with λ = 0 that is j = 2..N (GEM)
    fwt_windows = [j for j in windows if j + lag - 1 >= 1]
    fwt = _mean(r(j + lag - 1, j) - r(0, j) for j in fwt_windows) if fwt_windows else math.nan
    gain_base = _mean(r(j, j) - r(0, j) for j in windows)
    out = {"live_accuracy": live, "start_accuracy": start, "window_gain": live - start, "final_accuracy": final,
           "final_accuracy_micro": micro, "incremental_accuracy": incremental, "bwt": bwt,
           "forgetting": forgetting, "forgetting_clipped": clipped, "fwt": fwt, "gain_over_base": gain_base}
    return {k: out[k] for k in METRICS}


def macro_metrics(per_camera: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Each metric averaged over the cameras where it is defined (Ekya averages over streams)."""
    return {k: _mean(m[k] for m in per_camera.values()) for k in METRICS}


def running_metrics(matrices: Mapping[str, AccuracyMatrix], window: int,
                    lag: int = LAG) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """(per camera, macro) metrics of the run as if it had ended at ``window`` (rows 0..window, windows 1..window)."""
    per = {cam: continual_metrics(m.through(window), lag, m.probe_sizes[:window]) for cam, m in matrices.items()}
    return per, macro_metrics(per)


def matrix_frame(matrices: Mapping[str, AccuracyMatrix]) -> pd.DataFrame:
    """All matrices as one long table: camera, row (model at the end of that window), col (probe's window), accuracy."""
    rows = [(cam, i, j + 1, float(v))
            for cam, m in sorted(matrices.items()) for i, line in enumerate(m.values) for j, v in enumerate(line)]
    return pd.DataFrame(rows, columns=["camera", "row", "col", "accuracy"])
