"""Windows: disjoint train/val/test, history weighting, data fraction, seeded streams, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ekya.errors import EkyaError
from ekya.streams.windows import cut_windows, max_windows, subsample


def camera_table(camera: str = "cam", windows: int = 5, per: int = 50, seconds: float = 100.0) -> pd.DataFrame:
    """A schema-shaped table with `per` samples in each window (images are not needed here)."""
    rng = np.random.default_rng(7)
    ts = np.concatenate([k * seconds + np.sort(rng.uniform(0, seconds, per)) for k in range(windows)])
    n = len(ts)
    return pd.DataFrame({"camera": camera, "idx": np.arange(n), "timestamp": ts, "path": [f"{i}.jpg" for i in range(n)],
                         "x0": 0, "y0": 0, "x1": 8, "y1": 8, "label": rng.integers(0, 6, n),
                         "teacher_label": rng.integers(0, 6, n)})


def window_of(df: pd.DataFrame, seconds: float = 100.0) -> np.ndarray:
    return np.floor(df["timestamp"].to_numpy() / seconds).astype(int)


@pytest.mark.parametrize("hw", [-1.0, 0.0, 0.3, 0.75])
def test_splits_are_disjoint_and_test_is_the_live_window(hw: float) -> None:
    df = camera_table()
    ws = cut_windows(df, 5, 100.0, history_weight=hw, val_fraction=0.2, seed=3)
    assert [w.index for w in ws] == [0, 1, 2, 3, 4]
    assert ws[0].bootstrap and ws[0].test.empty
    assert set(ws[0].train.idx) | set(ws[0].val.idx) == set(df.idx[window_of(df) == 0])
    for w in ws:
        tr, va, te = set(w.train.idx), set(w.val.idx), set(w.test.idx)
        assert not (tr & va) and not (tr & te) and not (va & te)
        assert len(tr) > 0 and len(va) > 0
        if w.index >= 1:
            assert te == set(df.idx[window_of(df) == w.index])
            pool = pd.concat([w.train, w.val])
            assert window_of(pool).max() == w.index - 1  # only data labelled before window k
            assert (window_of(pool) == w.index - 1).sum() > 0


def test_history_weight_rules() -> None:
    df = camera_table(per=50)
    none = cut_windows(df, 5, 100.0, history_weight=0, seed=1)
    full = cut_windows(df, 5, 100.0, history_weight=-1, seed=1)
    for k in range(1, 5):
        assert set(pd.concat([none[k].train, none[k].val]).idx) == set(df.idx[window_of(df) == k - 1])
        assert set(pd.concat([full[k].train, full[k].val]).idx) == set(df.idx[window_of(df) < k])
    # 0.3: history is 30% of the pool (current window whole: 50 -> round(50*0.3/0.7) = 21 history)
    part = cut_windows(df, 5, 100.0, history_weight=0.3, seed=1)
    for k in range(2, 5):
        ids = window_of(pd.concat([part[k].train, part[k].val]))
        assert (ids == k - 1).sum() == 50 and (ids < k - 1).sum() == 21
        assert abs((ids < k - 1).mean() - 0.3) < 0.01
        # the same weight holds in train alone (each part is split separately)
        assert abs((window_of(part[k].train) < k - 1).mean() - 0.3) < 0.03
    # 0.75 at window 2: only 50 history samples, so the current part shrinks to 50*0.25/0.75 = 17
    big = cut_windows(df, 5, 100.0, history_weight=0.75, seed=1)
    ids = window_of(pd.concat([big[2].train, big[2].val]))
    assert (ids == 0).sum() == 50 and (ids == 1).sum() == 17


def test_seeded_per_camera_and_window_not_one_fixed_stream() -> None:
    """Defect 14: the original reseeded every call with 42, so every camera drew the same subset."""
    a = cut_windows(camera_table("a"), 5, 100.0, seed=5)
    again = cut_windows(camera_table("a"), 5, 100.0, seed=5)
    b = cut_windows(camera_table("b"), 5, 100.0, seed=5)  # identical rows, another camera
    other_seed = cut_windows(camera_table("a"), 5, 100.0, seed=6)
    for k in range(5):
        assert list(a[k].val.idx) == list(again[k].val.idx)
    assert any(list(a[k].val.idx) != list(b[k].val.idx) for k in range(5))
    assert any(list(a[k].val.idx) != list(other_seed[k].val.idx) for k in range(5))
    # nor do the windows of one camera: val sits at other positions of each window
    none = cut_windows(camera_table("a", per=50), 5, 100.0, history_weight=0, seed=5)
    positions = {tuple(none[k].val.idx.to_numpy() - 50 * (k - 1)) for k in range(1, 5)}
    assert len(positions) == 4


def test_val_fraction() -> None:
    ws = cut_windows(camera_table(per=50), 3, 100.0, history_weight=0, val_fraction=0.2, seed=0)
    assert len(ws[1].val) == 10 and len(ws[1].train) == 40
    ws = cut_windows(camera_table(per=50), 3, 100.0, history_weight=0, val_fraction=0.0, seed=0)
    assert ws[1].val.empty and len(ws[1].train) == 50


def test_data_fraction_uniform_without_replacement() -> None:
    df = camera_table(per=40).iloc[:100]
    half = subsample(df, 0.5, seed=1)
    assert len(half) == 50 and half.idx.is_unique and set(half.idx) <= set(df.idx)
    assert list(half.idx) == sorted(half.idx)
    assert list(subsample(df, 0.5, seed=1).idx) == list(half.idx)
    assert list(subsample(df, 0.5, seed=2).idx) != list(half.idx)
    assert len(subsample(df, 0.1, seed=1)) == 10 and len(subsample(df, 0.001, seed=1)) == 1
    assert subsample(df, 1.0, seed=1).equals(df)
    # uniform: over many seeds every row is drawn about half the time
    counts = np.zeros(100)
    for s in range(400):
        counts[subsample(df, 0.5, seed=s).idx.to_numpy()] += 1
    assert counts.min() > 150 and counts.max() < 250
    with pytest.raises(EkyaError, match="data_fraction"):
        subsample(df, 0.0, seed=1)


def test_too_many_windows_names_the_key_and_maximum() -> None:
    df = camera_table(windows=5)
    assert max_windows(df, 100.0) == 5
    with pytest.raises(EkyaError, match=r"dataset\.windows=6.*at most 5.*dataset\.windows <= 5"):
        cut_windows(df, 6, 100.0)
    # a window with fewer than 2 samples ends the usable range
    sparse = df[~((window_of(df) == 3) & (df.idx % 50 != 0))]
    assert max_windows(sparse, 100.0) == 3
    with pytest.raises(EkyaError, match="at most 3"):
        cut_windows(sparse, 4, 100.0)


@pytest.mark.parametrize("kwargs,key", [
    (dict(windows=0), "dataset.windows"), (dict(history_weight=1.0), "window.history_weight"),
    (dict(history_weight=-0.5), "window.history_weight"), (dict(val_fraction=1.0), "window.val_fraction"),
    (dict(window_seconds=0), "window.seconds"),
])
def test_bad_settings_name_their_key(kwargs: dict, key: str) -> None:
    args = dict(windows=3, window_seconds=100.0, history_weight=-1, val_fraction=0.2) | kwargs
    with pytest.raises(EkyaError, match=key.replace(".", r"\.")):
        cut_windows(camera_table(), args.pop("windows"), args.pop("window_seconds"), **args)
