"""iCaRL: herding, a bounded memory that remembers vanished classes, NME serving, exact state, every pass charged."""

from __future__ import annotations

import io
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ekya.configspace import RetrainConfig
from ekya.errors import EkyaError
from ekya.learners import FinetuneLearner
from ekya.learners.flops import sample_flops
from ekya.learners.herding import herd, herding_flops, normalise, pick_memory
from ekya.learners.icarl import ICaRLLearner
from ekya.learners.icarl_model import ICaRLModel
from ekya.streams.samples import StreamSet
from ekya.streams.windows import WindowCut, cut_windows

MEMORY = 30
FULL = RetrainConfig("full_e2", {"frozen": False, "epochs": 2, "lr": 0.002})
FROZEN = RetrainConfig("frozen_e2", {"frozen": True, "epochs": 2, "lr": 0.003})


@pytest.fixture(scope="module")
def learner() -> ICaRLLearner:
    return ICaRLLearner(icarl={"memory": MEMORY}, base_epochs=2, accelerator="cpu")


@pytest.fixture(scope="module")
def windows(small_synthetic: StreamSet):
    cut = WindowCut(100.0, history_weight=0.5, val_fraction=0.2, probe_fraction=0.0)
    return cut_windows(small_synthetic.camera("cam01"), 4, cut, seed=3)


@pytest.fixture(scope="module")
def base(learner, windows, small_synthetic) -> ICaRLModel:
    return learner.base_model(small_synthetic, windows[0], seed=0)


@pytest.fixture(scope="module")
def retrained(learner, base, windows, small_synthetic) -> ICaRLModel:
    return learner.retrain(base, FULL, windows[1].train, windows[1].val, small_synthetic, seed=1)[0]


def _pool_labels(model: ICaRLModel, train: pd.DataFrame) -> np.ndarray:
    """Teacher labels of a job's pool: the model's exemplars plus the window's new samples."""
    key = ["path", "x0", "y0", "x1", "y1"]
    old = set(map(tuple, model.memory[key].to_numpy().tolist()))
    train = train[train["teacher_label"] >= 0]
    fresh = [tuple(r) not in old for r in train[key].to_numpy().tolist()]
    return np.concatenate([model.memory["teacher_label"].to_numpy(), train["teacher_label"].to_numpy()[fresh]])


# -- herding and the memory rule ---------------------------------------------------------------------


def test_herding_picks_the_exemplar_that_moves_the_mean_closest_first() -> None:
    # Class mean of the three unit vectors is (0.533, 0.6): (0.6, 0.8) is closest (d^2 0.044); with it,
    # adding (1, 0) gives mean (0.8, 0.4) (d^2 0.111) against (0.3, 0.9) for (0, 1) (d^2 0.144).
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    assert herd(f, 3) == [2, 0, 1]
    assert herd(f, 1) == [2] and herd(f, 0) == [] and herd(f, 9) == [2, 0, 1]


def test_herding_is_the_greedy_argmin_of_the_running_mean() -> None:
    f = normalise(torch.randn(40, 8, generator=torch.Generator().manual_seed(0)))
    mu = f.double().mean(0)
    chosen: list[int] = []
    for _ in range(10):
        rest = [i for i in range(40) if i not in chosen]
        dist = [float(((f[chosen + [i]].double().mean(0) - mu) ** 2).sum()) for i in rest]
        chosen.append(rest[int(np.argmin(dist))])
    assert herd(f, 10) == chosen
    # and the herded mean approaches the class mean far faster than the first samples do
    herded = float(((f[chosen].double().mean(0) - mu) ** 2).sum())
    assert herded < float(((f[:10].double().mean(0) - mu) ** 2).sum()) / 4


@settings(max_examples=60, deadline=None)
@given(memory=st.integers(1, 40),
       mixes=st.lists(st.dictionaries(st.integers(0, 5), st.integers(1, 12), max_size=6), min_size=1, max_size=6),
       seed=st.integers(0, 10_000))
def test_memory_never_exceeds_its_budget_and_vanished_classes_stay(memory, mixes, seed) -> None:
    """Any sequence of windows and class mixes: |memory| <= K, <= floor(K / classes seen) per class."""
    rng = np.random.default_rng(seed)
    mem = np.zeros(0, dtype=np.int64)  # class of every exemplar, in stored order
    seen: set[int] = set()
    for mix in mixes:
        new = np.repeat(np.array(sorted(mix), dtype=np.int64), [mix[c] for c in sorted(mix)])
        labels = np.concatenate([mem, new])
        from_old = np.arange(len(labels)) < len(mem)
        feats = normalise(torch.as_tensor(rng.standard_normal((len(labels), 4))))
        pick = pick_memory(labels, from_old, set(mix), feats, memory, known=set(seen))
        before = {c: int((mem == c).sum()) for c in seen}
        seen |= set(mix)
        m = memory // len(seen) if seen else 0
        assert pick.per_class == m
        assert len(pick.rows) == len(set(pick.rows)) <= memory
        mem = labels[pick.rows]
        for c in seen:
            n = int((mem == c).sum())
            assert n <= m
            available = int((labels == c).sum()) if c in mix else before[c]
            assert n == min(m, available)  # a class absent from this window keeps what it had, up to m


# -- the learner -------------------------------------------------------------------------------------


def test_base_model_already_has_its_memory_and_means(base, windows) -> None:
    assert isinstance(base, ICaRLModel) and int(base.rounds) == 1
    classes = set(windows[0].train["teacher_label"].tolist()) - {-1}
    m = MEMORY // len(classes)
    assert set(base.memory["teacher_label"].tolist()) == classes
    assert (base.memory["teacher_label"].value_counts() <= m).all() and len(base.memory) <= MEMORY
    assert base.has_mean.tolist() == [c in classes for c in range(base.num_classes)]
    # exemplars come from the training part only: never validation or live data
    key = ["path", "x0", "y0", "x1", "y1"]
    mem = set(map(tuple, base.memory[key].to_numpy().tolist()))
    assert mem <= set(map(tuple, windows[0].train[key].to_numpy().tolist()))


def test_nme_prediction_is_the_nearest_class_mean_of_flipped_and_plain_exemplars(
        learner, retrained, windows, small_synthetic) -> None:
    crops = learner.crops(small_synthetic)
    model = retrained.eval()
    with torch.no_grad():
        mem = crops.images(model.memory)
        plain = normalise(model.features(mem))
        flipped = normalise(model.features(torch.flip(mem, dims=[3])))
        labels = torch.as_tensor(model.memory["teacher_label"].to_numpy())
        for c in range(model.num_classes):
            if model.has_mean[c]:
                want = normalise(((plain[labels == c].mean(0) + flipped[labels == c].mean(0)) / 2)[None])[0]
                assert torch.allclose(model.class_means[c], want, atol=1e-5)
        test = windows[2].test
        f = normalise(model.features(crops.images(test)))
        d = torch.cdist(f, model.class_means) ** 2
        d[:, ~model.has_mean] = torch.inf
        nearest = d.argmin(1).numpy()
    assert (learner.predict(model, test, small_synthetic) == nearest).all()
    head = model.logits(crops.images(test)).argmax(1).numpy()
    assert (head != nearest).any()  # NME is really what serves, not the head


def test_a_frozen_job_reuses_kept_flipped_features_and_they_are_the_fresh_ones(
        learner, retrained, windows, small_synthetic) -> None:
    w = windows[2]
    new, report = learner.retrain(retrained, FROZEN, w.train, w.val, small_synthetic, seed=6)
    crops = learner.crops(small_synthetic)
    with torch.no_grad():
        mem = crops.images(new.memory)
        plain = normalise(new.features(mem))
        flipped = normalise(new.features(torch.flip(mem, dims=[3])))
    # what the model keeps (partly carried over from the job before) is what a fresh pass gives
    assert torch.allclose(new.flipped, flipped, atol=1e-5)
    labels = torch.as_tensor(new.memory["teacher_label"].to_numpy())
    for c in range(new.num_classes):
        if new.has_mean[c]:
            want = normalise(((plain[labels == c].mean(0) + flipped[labels == c].mean(0)) / 2)[None])[0]
            assert torch.allclose(new.class_means[c], want, atol=1e-5)
    f = sample_flops(new.backbone_name, new.hidden, new.num_classes, new.image_size)
    key = ["path", "x0", "y0", "x1", "y1"]
    old_keys = set(map(tuple, retrained.memory[key].to_numpy().tolist()))
    fresh = sum(tuple(r) not in old_keys for r in new.memory[key].to_numpy().tolist())
    assert report.fixed_flops == f.backbone_forward * fresh < f.backbone_forward * len(new.memory)
    # a job that trains the backbone cannot reuse them: every exemplar gets its flipped pass
    full, full_report = learner.retrain(retrained, FULL, w.train, w.val, small_synthetic, seed=6)
    assert full_report.fixed_flops == f.backbone_forward * len(full.memory)


def test_state_round_trip_keeps_memory_means_and_outputs(learner, retrained, windows, small_synthetic) -> None:
    buf = io.BytesIO()
    torch.save(learner.model_state(retrained), buf)  # as the runtimes checkpoint and resume
    buf.seek(0)
    back = learner.load_model_state(torch.load(buf, map_location="cpu", weights_only=True))
    pd.testing.assert_frame_equal(back.memory, retrained.memory)
    assert retrained.flipped is not None and torch.equal(back.flipped, retrained.flipped)
    a, b = retrained.state_dict(), back.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert "class_means" in a and "has_mean" in a
    x = learner.crops(small_synthetic).images(windows[2].test)
    with torch.no_grad():
        assert torch.equal(retrained.eval()(x), back(x))


@pytest.mark.parametrize("config", [FULL, FROZEN], ids=["full", "frozen"])
def test_cost_is_finetune_on_the_same_pool_plus_teacher_herding_class_mean_and_nme_passes(
        learner, retrained, windows, small_synthetic, config) -> None:
    w = windows[2]
    labels = _pool_labels(retrained, w.train)
    new, report = learner.retrain(retrained, config, w.train, w.val, small_synthetic, seed=5)
    # The same pool through the plain fine-tuner: its training and validation passes.
    key = ["path", "x0", "y0", "x1", "y1"]
    labelled = w.train[w.train["teacher_label"] >= 0]
    pool = pd.concat([retrained.memory, labelled]).drop_duplicates(subset=key)
    assert len(pool) == len(labels)
    _, plain = FinetuneLearner(accelerator="cpu").retrain(retrained, config, pool, w.val, small_synthetic, seed=5)
    f = sample_flops(new.backbone_name, new.hidden, new.num_classes, new.image_size)
    m = MEMORY // len(set(labels.tolist()))
    herding = sum(herding_flops(int((labels == c).sum()), m, new.feature_dim) for c in set(labels.tolist()))
    nme = 2.0 * new.feature_dim * new.num_classes * len(w.val)  # the served accuracy: distances to the means
    if config.params["frozen"]:  # the exemplars kept from the old memory have their flipped features already
        old_keys = set(map(tuple, retrained.memory[key].to_numpy().tolist()))
        fresh = sum(tuple(r) not in old_keys for r in new.memory[key].to_numpy().tolist())
        assert 0 < fresh < len(new.memory)
    else:  # a trained backbone: every exemplar's flipped crop gets a pass
        fresh = len(new.memory)
    flipped = f.backbone_forward * fresh
    if config.params["frozen"]:  # the teacher shares the frozen backbone: only its head runs; features reused
        extra = f.head_forward * len(labels) + herding + flipped + nme
    else:  # teacher forward, the herding feature pass, the flipped exemplars (validation features are kept)
        extra = f.forward * len(labels) + f.backbone_forward * len(labels) + herding + flipped + nme
    assert report.train_flops == pytest.approx(plain.train_flops + extra, rel=1e-12)
    assert report.train_flops > plain.train_flops
    assert learner.forward_flops(new) == f.backbone_forward + 2 * new.feature_dim * new.num_classes
    # What the micro-profiler scales: the window's samples, the memory added to every epoch (those
    # the window holds too are trained once), and the per-job passes; they add up to the job's FLOPs.
    assert report.train_samples == len(labelled) and report.extra_train_samples == len(retrained.memory)
    key_set = set(map(tuple, retrained.memory[key].to_numpy().tolist()))
    shared = sum(tuple(r) in key_set for r in labelled[key].to_numpy().tolist())
    assert report.extra_overlap == pytest.approx(shared / len(labelled), rel=1e-12)
    per_epoch = report.train_samples * (1 - report.extra_overlap) + report.extra_train_samples
    assert per_epoch == pytest.approx(len(pool), rel=1e-12)
    once, per_train, per_val = report.pass_flops
    v = report.val_samples
    assert report.train_flops == pytest.approx(
        report.fixed_flops + once * (per_epoch + v) + report.train_once_flops * per_epoch
        + report.val_once_flops * v + report.epochs * (per_train * report.samples_seen / report.epochs + per_val * v),
        rel=1e-12)
    assert report.fixed_flops == flipped


@pytest.mark.parametrize("config", [FULL, FROZEN], ids=["full", "frozen"])
def test_the_reported_validation_accuracy_is_the_served_nme_one(
        learner, retrained, windows, small_synthetic, config) -> None:
    w = windows[3]
    new, report = learner.retrain(retrained, config, w.train, w.val, small_synthetic, seed=4)
    served = learner.evaluate(new, w.val, small_synthetic, teacher=True)
    assert report.val_accuracy == served and report.model_val_accuracy == served
    # the head's curve scores the epochs, but it is not what serves
    crops = learner.crops(small_synthetic)
    with torch.no_grad():
        head = (new.logits(crops.images(w.val)).argmax(1).numpy() == w.val["teacher_label"].to_numpy()).mean()
    assert max(report.val_acc) == pytest.approx(float(head))
    _, plain = FinetuneLearner(accelerator="cpu").retrain(retrained, config, w.train, w.val, small_synthetic, seed=4)
    assert np.isnan(plain.val_accuracy) and plain.model_val_accuracy == max(plain.val_acc)


def test_icarl_trains_in_the_mode_fine_tuning_trains_in(learner, retrained, windows, small_synthetic,
                                                      monkeypatch) -> None:
    """No mode of its own: whatever FinetuneModule does with BatchNorm, iCaRL's comparison stays like for like."""
    from ekya.learners.icarl_module import ICaRLModule
    from ekya.learners.training import FinetuneModule

    modes: dict[str, set[bool]] = {"finetune": set(), "icarl": set()}
    for name, cls in (("finetune", FinetuneModule), ("icarl", ICaRLModule)):
        step = cls.training_step

        def spy(self, batch, batch_idx, _step=step, _name=name):
            modes[_name].add(self.net.training)
            return _step(self, batch, batch_idx)

        monkeypatch.setattr(cls, "training_step", spy)
    w = windows[2]
    learner.retrain(retrained, FULL, w.train, w.val, small_synthetic, seed=3)
    FinetuneLearner(accelerator="cpu").retrain(retrained, FULL, w.train, w.val, small_synthetic, seed=3)
    assert modes["icarl"] and modes["icarl"] == modes["finetune"]


@pytest.mark.parametrize("loss", ["ce_kd", "bce", "bce_adaptive"])
def test_every_loss_trains_and_bce_without_a_new_class_ignores_labels_and_warns(
        loss, base, windows, small_synthetic, caplog) -> None:
    learner = ICaRLLearner(icarl={"memory": MEMORY, "loss": loss}, accelerator="cpu")
    model = base
    with caplog.at_level(logging.WARNING, logger="ekya.learners.icarl"):
        for k in (1, 2):
            start = model
            before = {k2: v.clone() for k2, v in start.state_dict().items()}
            all_old = bool(start.has_mean.all())
            model, report = learner.retrain(start, FULL, windows[k].train, windows[k].val, small_synthetic, seed=k)
            assert len(report.val_acc) == 2 and len(model.memory) <= MEMORY
            assert any(not torch.equal(before[n], v) for n, v in model.state_dict().items() if n.startswith("head."))
            if loss == "bce" and all_old:
                # The original BCE with every class old: every target is the teacher's own output, so the
                # labels no longer act (the defect the warning names): relabelled, the job trains the same net.
                train = windows[k].train
                shifted = np.where(train["teacher_label"] >= 0, (train["teacher_label"] + 1) % start.num_classes, -1)
                other, _ = learner.retrain(start, FULL, train.assign(teacher_label=shifted), windows[k].val,
                                           small_synthetic, seed=k)
                net = [n for n in before if n.startswith(("backbone.", "head."))]
                assert all(torch.equal(model.state_dict()[n], other.state_dict()[n]) for n in net)
    warned = [r for r in caplog.records if "every class is already old" in r.getMessage()]
    assert len(warned) == (1 if loss == "bce" and bool(base.has_mean.all()) else 0)


def test_a_class_that_vanishes_keeps_its_exemplars_and_mean(learner, retrained, windows, small_synthetic) -> None:
    w = windows[2]
    gone = int(retrained.memory["teacher_label"].mode()[0])
    train = w.train[w.train["teacher_label"] != gone]
    new, _ = learner.retrain(retrained, FULL, train, w.val, small_synthetic, seed=7)
    seen = set(retrained.memory["teacher_label"].tolist()) | set(train["teacher_label"].tolist()) - {-1}
    m = MEMORY // len(seen)
    old = retrained.memory[retrained.memory["teacher_label"] == gone]
    kept = new.memory[new.memory["teacher_label"] == gone]
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), old.head(m).reset_index(drop=True))
    assert bool(new.has_mean[gone])


def test_same_seed_same_model_and_memory(learner, retrained, windows, small_synthetic) -> None:
    w = windows[3]
    runs = [learner.retrain(retrained, FULL, w.train, w.val, small_synthetic, seed=9) for _ in range(2)]
    (a, ra), (b, rb) = runs
    pd.testing.assert_frame_equal(a.memory, b.memory)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert ra.val_acc == rb.val_acc and ra.train_flops == rb.train_flops


def test_bad_icarl_settings_name_the_key() -> None:
    with pytest.raises(EkyaError, match="learner.icarl.loss"):
        ICaRLLearner(icarl={"loss": "mse"})
    with pytest.raises(EkyaError, match="learner.icarl.memory"):
        ICaRLLearner(icarl={"memory": 0})
    with pytest.raises(EkyaError, match="unknown key"):
        ICaRLLearner(icarl={"budget": 10})
    with pytest.raises(EkyaError, match="learner.replay.buffer"):
        ICaRLLearner(replay={"buffer": "reservoir"})
