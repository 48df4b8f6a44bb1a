"""Probes for forgetting measured: held out of every pool, part of the live window, seeded, opt-in."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ekya.errors import EkyaError
from ekya.streams.windows import WindowCut, cut_windows

from helpers.windows import configured_window

#: 100 s windows, all history, a fifth of each chunk in val; the tests vary the probe
CUT = WindowCut(100.0, history_weight=-1, val_fraction=0.2, probe_fraction=0.0)


def table(counts: list[int], camera: str = "cam", seconds: float = 100.0) -> pd.DataFrame:
    """counts[k] samples in window k, with the schema's columns (images are not needed here)."""
    rng = np.random.default_rng(len(counts))
    ts = np.concatenate([k * seconds + np.sort(rng.uniform(0, seconds, n)) for k, n in enumerate(counts)])
    n = len(ts)
    return pd.DataFrame({"camera": camera, "idx": np.arange(n), "timestamp": ts, "path": [f"{i}.jpg" for i in range(n)],
                         "x0": 0, "y0": 0, "x1": 8, "y1": 8, "label": rng.integers(0, 6, n),
                         "teacher_label": rng.integers(0, 6, n)})


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(2, 40), min_size=1, max_size=6), seed=st.integers(0, 2**31 - 1),
       hw=st.sampled_from([-1.0, 0.0, 0.5, 0.3]), vf=st.sampled_from([0.0, 0.2, 0.5]),
       pf=st.sampled_from([0.01, 0.2, 0.5, 0.9]))
def test_a_probe_is_in_no_pool_and_no_val_of_any_window(counts, seed, hw, vf, pf) -> None:
    cut = WindowCut(100.0, history_weight=hw, val_fraction=vf, probe_fraction=pf)
    ws = cut_windows(table(counts), len(counts), cut, seed=seed)
    pooled = set().union(*(set(w.train.idx) | set(w.val.idx) for w in ws))
    assert ws[0].probe.empty
    for w in ws[1:]:
        probe = set(w.probe.idx)
        assert probe and not (probe & pooled)
        assert probe <= set(w.test.idx)  # the live data the served model is scored on keeps it
        assert len(probe) == min(max(round(pf * len(w.test)), 1), len(w.test) - 1)
        assert all(len(v.train) > 0 for v in ws)


def test_default_probe_is_the_val_role_and_changes_nothing() -> None:
    df = table([50] * 5)
    plain = cut_windows(df, 5, CUT, seed=4)
    # with all history, window 4 validates on the val parts of chunks 0..3: the probes of windows 1..3
    last_val = plain[4].val
    for w in plain[1:4]:
        chunk = last_val[np.floor(last_val.timestamp / 100.0).astype(int) == w.index]
        assert list(w.probe.idx) == list(chunk.idx) and len(w.probe) == 10
    trained = set().union(*(set(w.train.idx) for w in plain))
    assert all(not (set(w.probe.idx) & trained) for w in plain)
    # a fraction carves a new role and moves samples out of the pools, but leaves the bootstrap chunk alone
    carved = cut_windows(df, 5, replace(CUT, probe_fraction=0.2), seed=4)
    assert carved[0].train.equals(plain[0].train) and carved[0].val.equals(plain[0].val)
    assert all(len(c.train) < len(p.train) for c, p in zip(carved[2:], plain[2:]))
    assert all(c.test.equals(p.test) for c, p in zip(carved, plain))


def test_probes_are_seeded_per_camera_and_chunk() -> None:
    def probes(camera: str, seed: int) -> list[list[int]]:
        ws = cut_windows(table([40] * 4, camera), 4, replace(CUT, probe_fraction=0.25), seed=seed)
        return [list(w.probe.idx) for w in ws[1:]]

    assert probes("a", 1) == probes("a", 1)
    assert probes("a", 1) != probes("b", 1) and probes("a", 1) != probes("a", 2)
    positions = {tuple(np.asarray(p) - 40 * k) for k, p in enumerate(probes("a", 1), start=1)}
    assert len(positions) == 3  # each chunk draws its own probe


@pytest.mark.parametrize("pf", [-0.1, 1.0])
def test_bad_probe_fraction_names_its_key(pf: float) -> None:
    with pytest.raises(EkyaError, match=r"window\.probe_fraction"):
        cut_windows(table([20] * 3), 3, replace(CUT, probe_fraction=pf), seed=0)


def test_window_settings_check_the_probe_fraction() -> None:
    assert configured_window().probe_fraction == 0.0 and configured_window().forgetting
    with pytest.raises(EkyaError, match=r"window\.probe_fraction=1\.5"):
        configured_window(probe_fraction=1.5)
