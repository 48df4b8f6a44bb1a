"""Cut a camera's time-ordered samples into retraining windows with disjoint train/val/test sets.

Window k covers timestamps [k*T, (k+1)*T); call its samples chunk k. Every chunk is split once,
with a random stream derived from (seed, camera, chunk) alone, into a train part and a val part
(round(val_fraction * n) in val, at least one if val_fraction > 0, train keeping at least one).
That role is permanent: a sample is train or val in every window that uses it.

- Window 0 is the bootstrap window: chunk 0's train part trains the base model, its val part
  validates it, and it has no test set.
- Window k >= 1: test = all of chunk k (the live data the deployed model is scored on);
  train = chunk k-1's train part (labelled by the teacher while window k runs) plus history, the
  train parts of chunks 0..k-2; val = the val parts of the same chunks. History is weighted as the
  original's ``--history-weight`` on each side separately, so it has the same weight in both:
  -1 appends all of it, 0 none, h in (0, 1) makes it a fraction h of the side (shrinking the
  current part when there is too little history).

Probes (forgetting measured, ``ekya.results.continual``): window k's ``probe`` is a part of its
test set that no window ever trains on. With ``probe_fraction`` 0 it is chunk k's val part (never
trained on; later windows validate on it, so later models picked their best epoch partly by it);
with a fraction p > 0 a third permanent role is carved out of each chunk k >= 1 first, with its own
stream from (seed, camera, "probe", chunk): round(p * n) samples (at least one, leaving one) that
are in no train or val set of any window and stay in chunk k's test set. Chunk 0 is never carved,
so the base model is the same at every p. The bootstrap window has no test set, hence no probe.

Why permanent roles: a window's model descends from the base model through every earlier window's
retraining (carry-over), and each ancestor trained on train-role samples only. So no val sample of
any window was ever trained on by the deployed model or its lineage, and the validation accuracy
that the schedulers and the micro-profiler measure is honest. Re-splitting each window's pool
afresh would put most of window k's val into the train sets of earlier windows and inflate it.

Unlike the original, the random streams are derived from (seed, camera, chunk or window), never
reset to one fixed seed on every call (the original reseeded every split with 42, so every camera
drew the same subset), and no val sample is in any window's train set, nor in its own window's test
set (the original's val held samples that were also in train, and all the unselected history).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ekya.errors import EkyaError
from ekya.seeds import derive_rng

#: A window needs at least this many samples: one to train on and one to validate (or test) with.
MIN_WINDOW_SAMPLES = 2
#: A run needs at least this many windows: window 0 only bootstraps the base models, window 1 is the first played.
MIN_RUN_WINDOWS = 2


def check_run_windows(windows: Any) -> int:
    """``dataset.windows`` as a run's window count; EkyaError naming the key and the minimum if it cannot be one."""
    try:
        count: int | None = int(windows)
    except (TypeError, ValueError):
        count = None
    if count is None or isinstance(windows, bool) or float(windows) != count:
        raise EkyaError(f"dataset.windows={windows}: must be a whole number of windows, at least {MIN_RUN_WINDOWS}")
    if count < MIN_RUN_WINDOWS:
        raise EkyaError(f"dataset.windows={count}: must be at least {MIN_RUN_WINDOWS} (window 0 only trains the base "
                        "models; window 1 is the first one played and scored)")
    return count


@dataclass
class Window:
    """One camera's data for one retraining window."""

    index: int
    camera: str
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    #: held-out part of ``test`` that no window trains on, to measure forgetting (see the module doc)
    probe: pd.DataFrame

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


def fitting_seconds(camera_df: pd.DataFrame, windows: int) -> float | None:
    """The longest round window length at which ``windows`` windows each hold MIN_WINDOW_SAMPLES+ samples, or None.

    Round: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten, tried from the longest that could fit
    down to a thousandth of it (a camera's samples may bunch up, so a shorter length can fit where a longer
    one does not).
    """
    times = np.sort(camera_df["timestamp"].to_numpy(dtype=float))
    if windows < MIN_RUN_WINDOWS or len(times) < MIN_WINDOW_SAMPLES * windows:
        return None
    # the last window must start at or before the camera's second-to-last sample
    longest = times[-MIN_WINDOW_SAMPLES] / (windows - 1)
    if not longest > 0:
        return None
    top = math.floor(math.log10(longest))
    for exponent in range(top, top - 4, -1):
        for mantissa in (8, 6, 5, 4, 3, 2.5, 2, 1.5, 1.2, 1):
            seconds = float(f"{mantissa}e{exponent}")
            if seconds <= longest and max_windows(camera_df, seconds) >= windows:
                return seconds
    return None


def too_short(camera_df: pd.DataFrame, camera: str, windows: int, window_seconds: float, most: int) -> str:
    """The error for a camera that holds fewer than ``windows`` windows of ``window_seconds``, with fixes that run."""
    span = float(camera_df["timestamp"].max())
    fixes = []
    seconds = fitting_seconds(camera_df, windows)
    if seconds is not None:
        fixes.append(f"window.seconds={seconds:g} ({windows} windows of {seconds:g} s)")
    if most >= MIN_RUN_WINDOWS:
        fixes.append(f"dataset.windows={most}")
    fix = (f"set {' or '.join(fixes)}" if fixes else
           f"this camera is too short for {windows} windows; leave it out (dataset.cameras) or give it more data")
    return (f"dataset.windows={windows} is more than camera {camera!r} holds: its {len(camera_df)} samples span "
            f"{span:.0f} s, which fill only {most} window{'' if most == 1 else 's'} of {window_seconds:g} s with "
            f"{MIN_WINDOW_SAMPLES}+ samples each; {fix}")


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


@dataclass(frozen=True)
class WindowCut:
    """How a camera's samples are cut into windows: the ``window.`` keys seconds, history_weight,
    val_fraction and probe_fraction (see the module doc), checked once, when the value is made.

    No key has a default here: a run takes each from conf/config.yaml's ``window:`` group (as part of
    ``ekya.execution.runtime.WindowSettings``); a library caller states each.
    """

    seconds: float
    history_weight: float
    val_fraction: float
    probe_fraction: float

    def __post_init__(self) -> None:
        if not float(self.seconds) > 0:
            raise EkyaError(f"window.seconds={self.seconds}: must be > 0")
        if not (self.history_weight == -1 or 0 <= self.history_weight < 1):
            raise EkyaError(f"window.history_weight={self.history_weight}: use -1 (all history), 0 (none) "
                            "or a fraction in (0, 1)")
        if not 0 <= self.val_fraction < 1:
            raise EkyaError(f"window.val_fraction={self.val_fraction}: must be in [0, 1)")
        if not 0 <= self.probe_fraction < 1:
            raise EkyaError(f"window.probe_fraction={self.probe_fraction}: must be in [0, 1) (0 = probe on the "
                            "val-role samples)")


def _carve_probe(chunk: pd.DataFrame, probe_fraction: float,
                 rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rest, probe): round(probe_fraction * n) rows, at least one, leaving one for training."""
    n = len(chunk)
    n_probe = min(max(int(round(probe_fraction * n)), 1), n - 1)
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[:n_probe]] = True
    return chunk[~mask], chunk[mask]


def cut_windows(camera_df: pd.DataFrame, windows: int, cut: WindowCut, seed: int) -> list[Window]:
    """The first ``windows`` windows of one camera (index 0 = bootstrap), cut as ``cut`` says; see the module doc."""
    window_seconds, history_weight = cut.seconds, float(cut.history_weight)
    val_fraction, probe_fraction = float(cut.val_fraction), float(cut.probe_fraction)
    if int(windows) < 1:
        raise EkyaError(f"dataset.windows={windows}: must be at least 1 (window 0 is the bootstrap window)")
    if camera_df.empty:
        raise EkyaError("cut_windows: the camera has no samples")
    cameras = camera_df["camera"].unique()
    if len(cameras) != 1:
        raise EkyaError(f"cut_windows takes one camera's samples, got cameras {sorted(map(str, cameras))}")
    camera = str(cameras[0])
    df = camera_df.sort_values(["timestamp", "idx"], kind="stable")
    most = max_windows(df, window_seconds)
    if int(windows) > most:
        raise EkyaError(too_short(df, camera, int(windows), window_seconds, most))
    ids = _window_ids(df, window_seconds)
    chunks = [df[ids == k] for k in range(int(windows))]
    probes = [chunks[0].iloc[:0]] * len(chunks)
    pools = list(chunks)
    if probe_fraction > 0:
        for j in range(1, len(chunks)):
            pools[j], probes[j] = _carve_probe(chunks[j], probe_fraction, derive_rng(seed, camera, "probe", j))
    # One split per chunk, from its own stream: a sample's role never depends on the window asking.
    parts = [_split(pool, val_fraction, derive_rng(seed, camera, j)) for j, pool in enumerate(pools)]
    if probe_fraction == 0:
        probes = [chunks[0].iloc[:0]] + [val for _, val in parts[1:]]
    out = [Window(0, camera, *parts[0], chunks[0].iloc[:0], chunks[0].iloc[:0])]
    for k in range(1, int(windows)):
        sides = []
        rng = derive_rng(seed, camera, "history", k)
        for side in (0, 1):  # 0: train, 1: val; each weighted alone so history weighs the same in both
            current = parts[k - 1][side]
            history = pd.concat([p[side] for p in parts[:k - 1]]) if k >= 2 else current.iloc[:0]
            current, history = _weight_history(current, history, history_weight, rng)
            sides.append(pd.concat([history, current]).sort_values("idx", kind="stable"))
        out.append(Window(k, camera, *sides, chunks[k], probes[k]))
    return out
