"""Replay for fine-tuning: bounded, seeded buffers; batches that hold the asked share; state that survives a save."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ekya.configspace import RetrainConfig
from ekya.errors import EkyaError
from ekya.learners import FinetuneLearner, load_checkpoint, save_checkpoint
from ekya.learners.model_state import edge_model_from_state, edge_model_state
from ekya.learners.replay import ReplayBuffer, buffer_from_state, buffer_state, update_buffer
from ekya.learners.training import Batches
from ekya.streams.samples import StreamSet
from ekya.streams.windows import WindowCut, cut_windows


def pool(labels: list[int], t0: float = 0.0) -> pd.DataFrame:
    """A pool of rows with the given teacher labels, one per second from t0."""
    n = len(labels)
    return pd.DataFrame({"camera": "cam", "idx": np.arange(n) + int(t0), "timestamp": t0 + np.arange(n, dtype=float),
                         "path": [f"f{int(t0) + i}.jpg" for i in range(n)], "x0": 0, "y0": 0, "x1": 4, "y1": 4,
                         "label": labels, "teacher_label": labels})


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["reservoir", "class_balanced"]), memory=st.integers(1, 40),
       windows=st.lists(st.lists(st.integers(-1, 5), max_size=60), min_size=1, max_size=5), seed=st.integers(0, 99))
def test_buffer_never_exceeds_its_budget(kind, memory, windows, seed) -> None:
    buf, t, offered = ReplayBuffer(kind, memory), 0.0, 0
    for k, labels in enumerate(windows):
        buf = update_buffer(buf, pool(labels, t), seed + k)
        t += len(labels)
        offered += sum(1 for c in labels if c >= 0)
        assert len(buf) <= memory
        assert len(buf) == min(memory, offered) if kind == "reservoir" else len(buf) <= offered
        assert (buf.rows["teacher_label"] >= 0).all()  # unlabelled rows are no training target
        assert not buf.rows["idx"].duplicated().any()  # a sample is offered once, however often it re-enters a pool


def test_class_balanced_keeps_vanished_classes_and_reservoir_forgets_them() -> None:
    early = pool([0] * 50 + [1] * 50)
    late = pool([2] * 400, t0=100)
    balanced = update_buffer(update_buffer(ReplayBuffer("class_balanced", 30), early, 1), late, 2)
    counts = balanced.rows["teacher_label"].value_counts().to_dict()
    assert counts == {0: 10, 1: 10, 2: 10}
    reservoir = update_buffer(update_buffer(ReplayBuffer("reservoir", 30), early, 1), late, 2)
    # a uniform sample of 500 rows holds about 6 of the 100 early ones
    assert (reservoir.rows["teacher_label"] < 2).sum() <= 15


def test_reservoir_is_uniform_over_the_stream_and_deterministic_given_the_seed() -> None:
    stream = [pool([0] * 100, t0=100 * k) for k in range(5)]

    def run(seed: int) -> ReplayBuffer:
        buf = ReplayBuffer("reservoir", 50)
        for k, p in enumerate(stream):
            buf = update_buffer(buf, p, seed * 10 + k)
        return buf

    assert run(3).rows.equals(run(3).rows)
    assert not run(3).rows.equals(run(4).rows)
    # Each stored sample's position in the stream: uniform over 500 means each fifth holds 10 on average.
    per_fifth = np.zeros(5)
    for seed in range(40):
        per_fifth += np.bincount(run(seed).rows["timestamp"].to_numpy().astype(int) // 100, minlength=5)
    per_fifth /= 40
    assert np.all(np.abs(per_fifth - 10) < 1.5), per_fifth


def test_history_in_a_later_pool_is_not_offered_again() -> None:
    first = pool([0] * 20)
    buf = update_buffer(ReplayBuffer("reservoir", 100), first, 0)
    again = update_buffer(buf, pd.concat([first, pool([1] * 10, t0=20)]), 1)
    assert len(again) == 30 and again.seen == {-1: 30}


@pytest.mark.parametrize("ratio", [0.5, 0.25])
def test_training_batches_hold_the_asked_share_of_memory(ratio: float) -> None:
    x, y = torch.arange(100.0)[:, None], torch.zeros(100, dtype=torch.long)
    mx, my = 1000 + torch.arange(60.0)[:, None], torch.ones(60, dtype=torch.long)
    batches = Batches(x, y, 30, seed=0, memory=(mx, my, None), ratio=ratio)
    seen_pool = []
    for bx, by in batches:
        from_memory = int((by == 1).sum())
        assert from_memory == round((len(by) - from_memory) * ratio / (1 - ratio))
        assert abs(from_memory / len(by) - ratio) < 0.05
        assert bx[by == 1].min() >= 1000 and len(set(bx[by == 1].flatten().tolist())) == from_memory
        seen_pool += bx[by == 0].flatten().tolist()
    assert sorted(seen_pool) == list(range(100))  # the epoch still walks the pool once
    assert batches.samples == 100 + sum(batches.memory_sizes)


def test_buffer_state_round_trips_through_a_weights_only_checkpoint(tmp_path) -> None:
    buf = update_buffer(ReplayBuffer("class_balanced", 12), pool([0, 1, 2, 3] * 10), 5)
    assert buffer_from_state(buffer_state(buf)).rows.astype(str).equals(buf.rows.astype(str))
    learner = FinetuneLearner(base_epochs=1)
    model = learner.new_model(6, seed=0)
    plain = edge_model_state(model)
    assert set(plain) == {"arch", "state_dict"}  # no buffer, the checkpoint format of before
    model.replay = buf
    save_checkpoint(model, tmp_path / "m.pt")
    back = load_checkpoint(tmp_path / "m.pt")
    assert back.replay.kind == "class_balanced" and back.replay.seen == buf.seen
    assert back.replay.horizon == buf.horizon
    pd.testing.assert_frame_equal(back.replay.rows, buf.rows, check_dtype=False)
    blob = io.BytesIO()
    torch.save(learner.model_state(back), blob)
    blob.seek(0)
    again = edge_model_from_state(torch.load(blob, weights_only=True))
    pd.testing.assert_frame_equal(again.replay.rows, buf.rows, check_dtype=False)


def test_bad_replay_keys_are_named() -> None:
    with pytest.raises(EkyaError, match="learner.replay.buffer"):
        FinetuneLearner(replay={"buffer": "fifo"})
    with pytest.raises(EkyaError, match="learner.replay.ratio"):
        FinetuneLearner(replay={"buffer": "reservoir", "ratio": 1.0})
    with pytest.raises(EkyaError, match="learner.replay.memory"):
        FinetuneLearner(replay={"buffer": "reservoir", "memory": 0})


def test_replay_job_trains_on_the_buffer_counts_its_cost_and_carries_it_on(small_synthetic: StreamSet) -> None:
    cam = small_synthetic.cameras[0]
    cut = WindowCut(100.0, history_weight=0, val_fraction=0.2, probe_fraction=0.0)
    w = cut_windows(small_synthetic.camera(cam), 4, cut, seed=3)
    learner = FinetuneLearner(base_epochs=1, replay={"buffer": "reservoir", "memory": 30, "ratio": 0.5})
    base, base_report = learner.fit_base(small_synthetic, w[0], seed=0)
    assert len(base.replay) == 30 and base_report.samples_seen == len(w[0].train)  # nothing to replay yet
    cfg = RetrainConfig("c", {"epochs": 2, "batch_size": 16})
    new, report = learner.retrain(base, cfg, w[2].train, w[2].val, small_synthetic, seed=1)
    plain, plain_report = FinetuneLearner(base_epochs=1).retrain(base, cfg, w[2].train, w[2].val,
                                                                 small_synthetic, seed=1)
    n = len(w[2].train)
    extra = report.samples_seen - plain_report.samples_seen
    assert 2 * n * 0.9 <= extra <= 2 * n * 1.1  # about one buffer sample per pool sample, each epoch
    assert report.train_flops > plain_report.train_flops * 1.8
    once, per_train, per_val = report.pass_flops
    rebuilt = once * (n + len(w[2].val)) + 2 * (per_train * n + per_val * len(w[2].val))
    assert rebuilt == pytest.approx(report.train_flops, rel=1e-9)
    # window 2's pool is window 1's data, all of it new to the buffer (window 1's pool was window 0's)
    assert new.replay.seen == {-1: len(w[0].train) + n} and len(new.replay) == 30
    assert len(base.replay) == 30 and base.replay.seen == {-1: len(w[0].train)}  # the input model is untouched
    again, _ = learner.retrain(base, cfg, w[2].train, w[2].val, small_synthetic, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), new.state_dict().values()))


def test_frozen_replay_job_pays_the_buffer_feature_pass_and_the_extra_head_steps(small_synthetic: StreamSet) -> None:
    from ekya.learners.flops import sample_flops

    cam = small_synthetic.cameras[1]
    cut = WindowCut(100.0, history_weight=0, val_fraction=0.2, probe_fraction=0.0)
    w = cut_windows(small_synthetic.camera(cam), 3, cut, seed=3)
    learner = FinetuneLearner(base_epochs=1, replay={"buffer": "class_balanced", "memory": 24, "ratio": 0.25})
    base = learner.base_model(small_synthetic, w[0], seed=0)
    cfg = RetrainConfig("h", {"frozen": True, "epochs": 3, "batch_size": 8})
    _, report = learner.retrain(base, cfg, w[2].train, w[2].val, small_synthetic, seed=2)
    _, plain = FinetuneLearner(base_epochs=1).retrain(base, cfg, w[2].train, w[2].val, small_synthetic, seed=2)
    f = sample_flops(base.backbone_name, base.hidden, base.num_classes, base.image_size)
    extra = report.samples_seen - plain.samples_seen
    assert extra > 0 and report.samples_seen / plain.samples_seen == pytest.approx(4 / 3, rel=0.1)
    assert report.train_flops - plain.train_flops == pytest.approx(f.backbone_forward * 24 + f.head_train * extra)
