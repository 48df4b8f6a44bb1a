"""The fine-tuning learner: training helps, inputs stay untouched, frozen means frozen, FLOPs are exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ekya.configspace import RetrainConfig, load_configspace
from ekya.errors import EkyaError
from ekya.hydra_compose import CONF_DIR, compose_config
from ekya.learners import FinetuneLearner, load_checkpoint, save_checkpoint
from ekya.streams.samples import StreamSet
from ekya.streams.windows import WindowCut, cut_windows


@pytest.fixture(scope="module")
def learner() -> FinetuneLearner:
    return FinetuneLearner(base_epochs=3)


@pytest.fixture(scope="module")
def mild(small_synthetic: StreamSet):
    """Windows of the camera that barely drifts; window 3 trains on windows 0-2 (all history)."""
    drift = small_synthetic.meta["drift"]
    cam = min(drift, key=drift.get)
    cut = WindowCut(100.0, history_weight=-1, val_fraction=0.2, probe_fraction=0.0)
    return cut_windows(small_synthetic.camera(cam), 4, cut, seed=11)


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_retraining_learns_and_leaves_the_input_model_alone(learner, mild, small_synthetic) -> None:
    w = mild[3]
    model = learner.new_model(len(small_synthetic.classes), seed=0)
    before_state = state(model)
    before = learner.evaluate(model, w.test, small_synthetic)
    cfg = RetrainConfig("full", {"frozen": False, "epochs": 8, "lr": 0.002, "batch_size": 32})
    new, report = learner.retrain(model, cfg, w.train, w.val, small_synthetic, seed=1)
    after = learner.evaluate(new, w.test, small_synthetic)
    print(f"untrained {before:.3f} -> retrained {after:.3f}; val per epoch {report.val_acc}")
    assert after >= before + 0.25 and after >= 0.5
    assert same(state(model), before_state)
    assert new is not model
    assert report.epochs == 8 and len(report.val_acc) == 8
    assert report.train_samples == len(w.train) and report.val_samples == len(w.val)
    assert report.samples_seen == 8 * len(w.train)
    assert not report.from_scratch


def test_frozen_config_trains_the_head_only(learner, mild, small_synthetic) -> None:
    w = mild[2]
    model = learner.new_model(len(small_synthetic.classes), seed=0)
    before = state(model)
    cfg = RetrainConfig("frozen", {"frozen": True, "epochs": 3, "lr": 0.003})
    new, report = learner.retrain(model, cfg, w.train, w.val, small_synthetic, seed=2)
    after = state(new)
    backbone = [k for k in before if k.startswith("backbone.")]
    head = [k for k in before if k.startswith("head.")]
    assert backbone and head
    assert all(torch.equal(before[k], after[k]) for k in backbone)  # weights and BatchNorm statistics
    assert any(not torch.equal(before[k], after[k]) for k in head)
    assert same(state(model), before)
    assert all(p.requires_grad for p in new.parameters())


def test_new_hidden_width_gets_a_new_head_on_the_same_backbone(learner, mild, small_synthetic) -> None:
    w = mild[1]
    model = learner.new_model(len(small_synthetic.classes), seed=0)
    new, _ = learner.retrain(model, RetrainConfig("h64", {"frozen": True, "hidden": 64, "epochs": 1}), w.train, w.val,
                             small_synthetic, seed=3)
    assert new.hidden == 64 and new.head[0].out_features == 64 and model.hidden == 256
    assert all(torch.equal(a, b)
               for a, b in zip(model.backbone.state_dict().values(), new.backbone.state_dict().values()))


def test_one_epoch_returns_the_trained_weights(learner, mild, small_synthetic) -> None:
    """With epochs=1 the original never validated and handed back the initial weights."""
    w = mild[1]
    model = learner.new_model(len(small_synthetic.classes), seed=0)
    new, report = learner.retrain(model, RetrainConfig("e1", {"epochs": 1}), w.train, w.val, small_synthetic, seed=4)
    assert len(report.val_acc) == 1
    assert not same(state(model), state(new))


def test_flops_are_deterministic_and_proportional_to_epochs(learner, mild, small_synthetic) -> None:
    w = mild[2]
    model = learner.new_model(len(small_synthetic.classes), seed=0)

    def job(frozen: bool, epochs: int, seed: int = 5):
        cfg = RetrainConfig("f", {"frozen": frozen, "epochs": epochs, "data_fraction": 0.5})
        return learner.retrain(model, cfg, w.train, w.val, small_synthetic, seed=seed)

    (m1, r1), (m1b, r1b), (_, r2) = job(False, 1), job(False, 1), job(False, 2)
    assert r1.train_flops > 0 and r1.train_flops == r1b.train_flops
    assert r2.train_flops == 2 * r1.train_flops
    assert same(state(m1), state(m1b)) and r1.val_acc == r1b.val_acc  # same seed, same job
    f1, f2, f3 = (job(True, e)[1].train_flops for e in (1, 2, 3))
    assert f3 - f2 == f2 - f1 > 0  # one backbone pass per sample, then the head per epoch
    assert f1 > f2 - f1  # the one-off backbone pass costs more than a head epoch
    assert f2 - f1 < r1.train_flops / 10  # head-only epochs are nearly free


def test_base_model_is_deterministic_and_beats_chance(learner, small_synthetic) -> None:
    cut = WindowCut(100.0, history_weight=-1.0, val_fraction=0.2, probe_fraction=0.0)
    ws = cut_windows(small_synthetic.camera("cam00"), 4, cut, seed=0)
    a, rep = learner.fit_base(small_synthetic, ws[0], seed=7)
    b = learner.base_model(small_synthetic, ws[0], seed=7)
    assert same(state(a), state(b)) and rep is not None and len(rep.val_acc) == 3
    assert learner.evaluate(a, ws[1].test, small_synthetic) > 1.5 / len(small_synthetic.classes)
    # a plain table works too (split here with the learner's val_fraction)
    c = learner.base_model(small_synthetic, small_synthetic.camera("cam00").iloc[:60], seed=7)
    assert c.backbone_name == learner.backbone


def test_checkpoint_round_trip(learner, small_synthetic, tmp_path: Path) -> None:
    model = learner.new_model(len(small_synthetic.classes), seed=3)
    save_checkpoint(model, tmp_path / "base_cam01.pt")
    loaded = FinetuneLearner(checkpoint=str(tmp_path / "base_{camera}.pt"))
    cut = WindowCut(100.0, history_weight=-1.0, val_fraction=0.2, probe_fraction=0.0)
    ws = cut_windows(small_synthetic.camera("cam01"), 2, cut, seed=0)
    assert same(state(loaded.base_model(small_synthetic, ws[0], seed=0)), state(model))
    with pytest.raises(EkyaError, match="learner.checkpoint.*does not exist"):
        cut = WindowCut(100.0, history_weight=-1.0, val_fraction=0.2, probe_fraction=0.0)
        loaded.base_model(small_synthetic, cut_windows(small_synthetic.camera("cam02"), 2, cut, seed=0)[0], seed=0)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(EkyaError, match="not an ekya model checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_evaluate_uses_label_then_teacher_label(learner, mild, small_synthetic) -> None:
    model = learner.new_model(len(small_synthetic.classes), seed=0)
    df = mild[1].test.copy()
    pred = learner.predict(model, df, small_synthetic)
    df["teacher_label"] = pred  # the teacher agrees with the model everywhere
    truth = df["label"].to_numpy()
    assert learner.evaluate(model, df, small_synthetic) == pytest.approx((pred == truth).mean())
    assert learner.evaluate(model, df, small_synthetic, teacher=True) == 1.0
    df.loc[df.index[:20], "label"] = -1  # unknown ground truth falls back to the teacher
    want = np.concatenate([np.ones(20), (pred[20:] == truth[20:])]).mean()
    assert learner.evaluate(model, df, small_synthetic) == pytest.approx(want)
    assert np.isnan(learner.evaluate(model, df.iloc[:0], small_synthetic))


def test_bad_config_names_the_config_and_key(learner, mild, small_synthetic) -> None:
    w = mild[1]
    model = learner.new_model(6, seed=0)
    for params, key in (({"epoch": 3}, "unknown key"), ({"data_fraction": 0.0}, "data_fraction"),
                        ({"backbone": "vgg"}, "backbone"), ({"epochs": 0}, "epochs")):
        with pytest.raises(EkyaError, match=f"'bad'.*{key}"):
            learner.retrain(model, RetrainConfig("bad", params), w.train, w.val, small_synthetic, seed=0)


def test_config_spaces_are_valid_for_the_learner(learner) -> None:
    cpu = load_configspace(OmegaConf.to_container(OmegaConf.load(CONF_DIR / "configspace" / "cpu.yaml")))
    orig = load_configspace(OmegaConf.to_container(OmegaConf.load(CONF_DIR / "configspace" / "original.yaml")))
    assert 6 <= len(cpu) <= 12
    for config in (*cpu.values(), *orig.values()):
        learner.check_config(config)  # what the composition root runs before any training
    assert {learner.params(c).frozen for c in cpu.values()} == {True, False}
    assert all(learner.params(c).backbone == learner.backbone for c in cpu.values())
    params = [learner.params(c) for c in orig.values()]
    assert len(orig) == 54 and {p.epochs for p in params} == {5, 15, 30}
    assert {(p.backbone, p.frozen, p.hidden, p.data_fraction) for p in params} == {
        (b, f, h, d) for b in ("resnet18", "resnet50", "resnet101") for f, h in ((True, 64), (False, 1024))
        for d in (0.1, 0.5, 1.0)}


def test_the_learner_config_instantiates() -> None:
    cfg = compose_config()
    learner = instantiate(cfg.learner)
    assert isinstance(learner, FinetuneLearner) and learner.backbone == cfg.learner.backbone
    assert learner.eval_batch_size == cfg.learner.eval_batch_size == 256
    assert learner.device.type == ("cuda" if torch.cuda.is_available() else "cpu")  # accelerator: auto
    assert learner.val_fraction == cfg.window.val_fraction
    assert instantiate(compose_config(["learner.accelerator=cpu"]).learner).device == torch.device("cpu")


def test_config_with_another_backbone_starts_from_that_backbone(learner, mild, small_synthetic) -> None:
    w = mild[1]
    model = learner.new_model(len(small_synthetic.classes), seed=0)
    cfg = RetrainConfig("r18", {"backbone": "resnet18", "frozen": True, "hidden": 64, "epochs": 1,
                                "data_fraction": 0.2})
    new, report = learner.retrain(model, cfg, w.train, w.val, small_synthetic, seed=0)
    assert report.from_scratch and new.backbone_name == "resnet18" and new.hidden == 64
    assert model.backbone_name == learner.backbone
