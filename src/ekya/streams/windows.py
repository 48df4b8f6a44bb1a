"""Cut a camera's time-ordered samples into retraining windows with disjoint train/val/test sets.

Window k covers timestamps [k*T, (k+1)*T). Window 0 is the bootstrap window: its samples (split
into train/val) train the base model, and it has no test set. For k >= 1:

- test  = every sample of window k (the live data the deployed model is scored on);
- pool  = the samples of window k-1 (labelled by the teacher while window k runs) plus history
  from windows 0..k-2, weighted as the original's ``--history-weight``: -1 appends all history,
  0 appends none, h in (0, 1) makes history a fraction h of the pool;
- train/val = a seeded, disjoint split of the pool (each part split separately, so history has the
  same weight in both).

Unlike the original, the random stream is derived from (seed, camera, window), never reset to one
fixed seed on every call (defect 14), and val never shares a sample with train or test (defect 15).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ekya.errors import EkyaError
from ekya.seeds import derive_rng

#: A window needs at least this many samples: one to train on and one to validate (or test) with.
MIN_WINDOW_SAMPLES = 2


@dataclass
class Window:
    """One camera's data for one retraining window."""

    index: int
    camera: str
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    @property
    def bootstrap(self) -> bool:
        """Whether this is window 0, whose train/val build the base model."""
        return self.index == 0


def _window_ids(df: pd.DataFrame, window_seconds: float) -> np.ndarray:
    return np.floor(df["timestamp"].to_numpy(dtype=float) / window_seconds).astype(np.int64)


def max_windows(camera_df: pd.DataFrame, window_seconds: float) -> int:
    """How many leading windows of ``window_seconds`` each hold at least MIN_WINDOW_SAMPLES samples."""
    ids = _window_ids(camera_df, window_seconds)
    if len(ids) == 0:
        return 0
    counts = np.bincount(ids[ids >= 0])
    short = np.nonzero(counts < MIN_WINDOW_SAMPLES)[0]
    return int(short[0]) if len(short) else len(counts)


def _take(df: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """n rows drawn uniformly without replacement, kept in time order."""
    if n >= len(df):
        return df
    pick = np.sort(rng.choice(len(df), size=n, replace=False))
    return df.iloc[pick]


def subsample(df: pd.DataFrame, fraction: float, seed: int, key: str = "data_fraction") -> pd.DataFrame:
    """A uniform draw without replacement of round(fraction * n) rows (at least 1), in time order."""
    fraction = float(fraction)
    if not 0.0 < fraction <= 1.0:
        raise EkyaError(f"{key}={fraction}: must be in (0, 1]")
    if fraction == 1.0 or len(df) == 0:
        return df
    n = max(1, int(round(fraction * len(df))))
    return _take(df, n, derive_rng(seed, "subsample", len(df)))


def _split(df: pd.DataFrame, val_fraction: float, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Disjoint (train, val); val gets round(val_fraction * n) rows, but train keeps at least one."""
    n = len(df)
    n_val = min(int(round(val_fraction * n)), max(n - 1, 0))
    if val_fraction > 0 and n >= MIN_WINDOW_SAMPLES:
        n_val = max(n_val, 1)
    perm = rng.permutation(n)
    val_mask = np.zeros(n, dtype=bool)
    val_mask[perm[:n_val]] = True
    return df[~val_mask], df[val_mask]


def _weight_history(current: pd.DataFrame, history: pd.DataFrame, history_weight: float,
                    rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(current, history) after the original's --history-weight rule."""
    if history_weight == 0 or history.empty:
        return current, history.iloc[:0]
    if history_weight == -1:
        return current, history
    want = int(round(len(current) * history_weight / (1 - history_weight)))
    if want <= len(history):
        return current, _take(history, want, rng)
    # Too little history for the fraction: keep it all and shrink the current part instead, as the
    # original did, so history still makes up the fraction asked for.
    n_cur = max(1, int(round(len(history) * (1 - history_weight) / history_weight)))
    return _take(current, n_cur, rng), history


def _check(windows: int, window_seconds: float, history_weight: float, val_fraction: float) -> None:
    if int(windows) < 1:
        raise EkyaError(f"dataset.windows={windows}: must be at least 1 (window 0 is the bootstrap window)")
    if not float(window_seconds) > 0:
        raise EkyaError(f"window.seconds={window_seconds}: must be > 0")
    if not (history_weight == -1 or 0 <= history_weight < 1):
        raise EkyaError(f"window.history_weight={history_weight}: use -1 (all history), 0 (none) "
                        "or a fraction in (0, 1)")
    if not 0 <= val_fraction < 1:
        raise EkyaError(f"window.val_fraction={val_fraction}: must be in [0, 1)")


def cut_windows(
    camera_df: pd.DataFrame,
    windows: int,
    window_seconds: float,
    history_weight: float = -1.0,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> list[Window]:
    """The first ``windows`` windows of one camera (index 0 = bootstrap); see the module doc."""
    history_weight, val_fraction = float(history_weight), float(val_fraction)
    _check(windows, window_seconds, history_weight, val_fraction)
    if camera_df.empty:
        raise EkyaError("cut_windows: the camera has no samples")
    cameras = camera_df["camera"].unique()
    if len(cameras) != 1:
        raise EkyaError(f"cut_windows takes one camera's samples, got cameras {sorted(map(str, cameras))}")
    camera = str(cameras[0])
    df = camera_df.sort_values(["timestamp", "idx"], kind="stable")
    most = max_windows(df, window_seconds)
    if int(windows) > most:
        span = float(df["timestamp"].max())
        raise EkyaError(f"dataset.windows={windows} is more than camera {camera!r} holds: its {len(df)} samples "
                        f"span {span:.0f} s, which fill at most {most} windows of {window_seconds:g} s with "
                        f"{MIN_WINDOW_SAMPLES}+ samples each; set dataset.windows <= {most}")
    ids = _window_ids(df, window_seconds)
    chunks = [df[ids == k] for k in range(int(windows))]
    out = []
    for k in range(int(windows)):
        rng = derive_rng(seed, camera, k)
        if k == 0:
            train, val = _split(chunks[0], val_fraction, rng)
            out.append(Window(0, camera, train, val, chunks[0].iloc[:0]))
            continue
        history = pd.concat(chunks[:k - 1]) if k >= 2 else chunks[0].iloc[:0]
        current, history = _weight_history(chunks[k - 1], history, history_weight, rng)
        cur_train, cur_val = _split(current, val_fraction, rng)
        hist_train, hist_val = _split(history, val_fraction, rng)
        train = pd.concat([hist_train, cur_train]).sort_values("idx", kind="stable")
        val = pd.concat([hist_val, cur_val]).sort_values("idx", kind="stable")
        out.append(Window(k, camera, train, val, chunks[k]))
    return out
