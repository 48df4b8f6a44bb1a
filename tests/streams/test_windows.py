"""Windows: disjoint train/val/test, val held out from the lineage, history weighting, data fraction,
seeded streams, errors."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from ekya.composition import window_settings
from ekya.errors import EkyaError
from ekya.hydra_compose import compose_config
from ekya.seeds import derive_seed
from ekya.streams.windows import WindowCut, cut_windows, max_windows, subsample

#: the cut most tests vary one key of: 100 s windows, all history, a fifth of each chunk in val, no carved probe
CUT = WindowCut(100.0, history_weight=-1, val_fraction=0.2, probe_fraction=0.0)


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


def uneven_table(counts: list[int], seconds: float = 100.0) -> pd.DataFrame:
    """Like camera_table, with counts[k] samples in window k."""
    rng = np.random.default_rng(len(counts))
    ts = np.concatenate([k * seconds + np.sort(rng.uniform(0, seconds, n)) for k, n in enumerate(counts)])
    n = len(ts)
    return pd.DataFrame({"camera": "cam", "idx": np.arange(n), "timestamp": ts, "path": [f"{i}.jpg" for i in range(n)],
                         "x0": 0, "y0": 0, "x1": 8, "y1": 8, "label": 0, "teacher_label": 0})


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(2, 40), min_size=1, max_size=6), seed=st.integers(0, 2**31 - 1),
       hw=st.sampled_from([-1.0, 0.0, 0.5, 0.3, 0.75]), vf=st.sampled_from([0.0, 0.1, 0.2, 0.5, 0.9]))
def test_no_val_sample_is_ever_trained_on(counts: list[int], seed: int, hw: float, vf: float) -> None:
    """Roles are permanent: val of any window never meets train of any window (the model's lineage)."""
    df = uneven_table(counts)
    ws = cut_windows(df, len(counts), replace(CUT, history_weight=hw, val_fraction=vf), seed=seed)
    trained = set().union(*(set(w.train.idx) for w in ws))
    for w in ws:
        tr, va, te = set(w.train.idx), set(w.val.idx), set(w.test.idx)
        assert not (va & trained)
        assert not (tr & va) and not (tr & te) and not (va & te)
        assert w.train.idx.is_unique and w.val.idx.is_unique and len(tr) > 0
        assert (len(va) > 0) == (vf > 0)
        assert te == (set(df.idx[window_of(df) == w.index]) if w.index else set())


def test_default_run_validates_on_samples_no_ancestor_trained_on(tmp_path: Path) -> None:
    """The default deployment's windows, cut as the emulator cuts them: val is outside the lineage's train."""
    cfg = compose_config([f"dataset.root={tmp_path}"])
    loader_args = OmegaConf.to_container(cfg.dataset, resolve=True)
    del loader_args["windows"]  # the runtime's key, not the loader's
    ss = instantiate(loader_args)
    assert len(ss.cameras) == 6 and cfg.dataset.windows == 6
    cut = window_settings(cfg)  # as the run reads the window group
    for cam in ss.cameras:
        ws = cut_windows(ss.camera(cam), cfg.dataset.windows, cut, seed=derive_seed(cfg.seed, "split", cam))
        assert len(ws) == 6
        lineage: set[int] = set()  # what the base model and every carried-over retraining trained on
        for w in ws:
            lineage |= set(w.train.idx)
            assert not (set(w.val.idx) & lineage), (cam, w.index)
            assert w.index < 2 or (window_of(w.val, cfg.window.seconds) < w.index - 1).any()  # history in val
        trained = set().union(*(set(w.train.idx) for w in ws))
        for w in ws:
            assert not (set(w.val.idx) & trained), (cam, w.index)


@pytest.mark.parametrize("hw", [-1.0, 0.0, 0.3, 0.75])
def test_splits_are_disjoint_and_test_is_the_live_window(hw: float) -> None:
    df = camera_table()
    ws = cut_windows(df, 5, replace(CUT, history_weight=hw), seed=3)
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
    none = cut_windows(df, 5, replace(CUT, history_weight=0), seed=1)
    full = cut_windows(df, 5, CUT, seed=1)
    for k in range(1, 5):
        assert set(pd.concat([none[k].train, none[k].val]).idx) == set(df.idx[window_of(df) == k - 1])
        assert set(pd.concat([full[k].train, full[k].val]).idx) == set(df.idx[window_of(df) < k])
    # 0.3: history is 30% of the pool (current window whole: 40 train + 10 val ->
    # round(40*0.3/0.7) + round(10*0.3/0.7) = 17 + 4 = 21 history)
    part = cut_windows(df, 5, replace(CUT, history_weight=0.3), seed=1)
    for k in range(2, 5):
        ids = window_of(pd.concat([part[k].train, part[k].val]))
        assert (ids == k - 1).sum() == 50 and (ids < k - 1).sum() == 21
        assert abs((ids < k - 1).mean() - 0.3) < 0.01
        # the same weight holds in train alone (each side is weighted separately)
        assert abs((window_of(part[k].train) < k - 1).mean() - 0.3) < 0.03
    # 0.75 at window 2: history is window 0's 40 train and 10 val samples, too few, so the current
    # parts shrink to round(40*0.25/0.75) = 13 train and round(10*0.25/0.75) = 3 val
    big = cut_windows(df, 5, replace(CUT, history_weight=0.75), seed=1)
    assert (window_of(big[2].train) == 0).sum() == 40 and (window_of(big[2].train) == 1).sum() == 13
    assert (window_of(big[2].val) == 0).sum() == 10 and (window_of(big[2].val) == 1).sum() == 3


def test_seeded_per_camera_and_window_not_one_fixed_stream() -> None:
    """The original reseeded every call with 42, so every camera drew the same subset; ours are seeded per camera."""
    a = cut_windows(camera_table("a"), 5, CUT, seed=5)
    again = cut_windows(camera_table("a"), 5, CUT, seed=5)
    b = cut_windows(camera_table("b"), 5, CUT, seed=5)  # identical rows, another camera
    other_seed = cut_windows(camera_table("a"), 5, CUT, seed=6)
    for k in range(5):
        assert list(a[k].val.idx) == list(again[k].val.idx)
    assert any(list(a[k].val.idx) != list(b[k].val.idx) for k in range(5))
    assert any(list(a[k].val.idx) != list(other_seed[k].val.idx) for k in range(5))
    # nor do the windows of one camera: val sits at other positions of each window
    none = cut_windows(camera_table("a", per=50), 5, replace(CUT, history_weight=0), seed=5)
    positions = {tuple(none[k].val.idx.to_numpy() - 50 * (k - 1)) for k in range(1, 5)}
    assert len(positions) == 4


def test_val_fraction() -> None:
    ws = cut_windows(camera_table(per=50), 3, replace(CUT, history_weight=0), seed=0)
    assert len(ws[1].val) == 10 and len(ws[1].train) == 40
    ws = cut_windows(camera_table(per=50), 3, replace(CUT, history_weight=0, val_fraction=0.0), seed=0)
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


def _advised_seconds(message: str, windows: int) -> float:
    """The window.seconds a too-short camera's error advises for ``windows`` windows."""
    found = re.search(rf"set window\.seconds=(\S+) \({windows} windows of ", message)
    assert found, message
    return float(found.group(1))


def test_too_many_windows_names_the_key_and_fixes_that_run() -> None:
    df = camera_table(windows=5)
    assert max_windows(df, 100.0) == 5
    with pytest.raises(EkyaError, match=r"dataset\.windows=6 .*only 5 windows of 100 s") as e:
        cut_windows(df, 6, CUT, seed=0)
    seconds = _advised_seconds(str(e.value), 6)
    assert len(cut_windows(df, 6, replace(CUT, seconds=seconds), seed=0)) == 6 and seconds < 100  # the advice runs
    assert str(e.value).endswith("or dataset.windows=5") and len(cut_windows(df, 5, CUT, seed=0)) == 5
    # a window with fewer than 2 samples ends the usable range
    sparse = df[~((window_of(df) == 3) & (df.idx % 50 != 0))]
    assert max_windows(sparse, 100.0) == 3
    with pytest.raises(EkyaError, match="only 3 windows"):
        cut_windows(sparse, 4, CUT, seed=0)


def test_short_data_advises_a_shorter_window_never_too_few_windows() -> None:
    # a new user's first video: 128 samples over 79 s fill one 200 s window, and a run needs two
    video = camera_table(windows=1, per=128, seconds=79.0)
    with pytest.raises(EkyaError, match=r"only 1 window of 200 s") as e:
        cut_windows(video, 3, replace(CUT, seconds=200.0), seed=0)
    assert "dataset.windows=1" not in str(e.value) and "dataset.windows <=" not in str(e.value)
    assert len(cut_windows(video, 3, replace(CUT, seconds=_advised_seconds(str(e.value), 3)), seed=0)) == 3
    for counts in ([40, 3, 0, 9, 30], [2, 2, 50, 1, 7], [100, 0, 0, 0, 4]):  # gaps and sparse stretches
        uneven = uneven_table(counts)
        with pytest.raises(EkyaError) as e:
            cut_windows(uneven, 6, CUT, seed=0)
        fixes = re.findall(r"window\.seconds=(\S+) \(6 windows|dataset\.windows=(\d+)$", str(e.value))
        assert fixes, str(e.value)
        for seconds, windows in fixes:  # every fix it advises runs, and none is below a run's 2 windows
            n = int(windows) if windows else 6
            cut = replace(CUT, seconds=float(seconds)) if seconds else CUT
            assert n >= 2 and len(cut_windows(uneven, n, cut, seed=0)) == n
    with pytest.raises(EkyaError, match="too short for 3 windows; leave it out"):  # 4 samples: no length fits
        cut_windows(video.iloc[:4], 3, replace(CUT, seconds=200.0), seed=0)


@pytest.mark.parametrize("kwargs,key", [
    (dict(history_weight=1.0), "window.history_weight"), (dict(history_weight=-0.5), "window.history_weight"),
    (dict(val_fraction=1.0), "window.val_fraction"), (dict(seconds=0), "window.seconds"),
])
def test_bad_settings_name_their_key(kwargs: dict, key: str) -> None:
    """A library caller's plain numbers are checked where they become a cut, with the key to fix."""
    with pytest.raises(EkyaError, match=key.replace(".", r"\.")):
        replace(CUT, **kwargs)


def test_a_run_needs_a_window_to_cut() -> None:
    with pytest.raises(EkyaError, match=r"dataset\.windows=0: must be at least 1"):
        cut_windows(camera_table(), 0, CUT, seed=0)


def test_the_runs_settings_are_the_cut_checked_once(make_cfg) -> None:
    """The run's window settings are the cut itself (no second copy to drift), checked when they are read."""
    settings = window_settings(make_cfg("window.history_weight=0.3"))
    assert isinstance(settings, WindowCut) and settings.history_weight == 0.3
    with pytest.raises(EkyaError, match=r"window\.history_weight=1\.0: use -1"):
        window_settings(make_cfg("window.history_weight=1.0"))
