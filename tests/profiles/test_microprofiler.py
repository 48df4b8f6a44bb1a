"""Micro-profiler: trial per family, extrapolation to each config, cost from measured work, pruning."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from ekya.configspace import RetrainConfig
from ekya.errors import EkyaError
from ekya.profiles.curvefit import FAMILIES
from ekya.profiles.microprofiler import FLEET, MicroProfiler, family_of, pareto_gap, transfer


@dataclass
class Report:
    epochs: int
    train_flops: float
    val_acc: list
    train_samples: int
    val_samples: int
    from_scratch: bool = False
    pass_flops: tuple = (0.0, 3.0, 1.0)


@dataclass
class FakeLearner:
    """Accuracy follows a known Optimus curve in passes over the full pool; FLOPs are counted exactly."""

    calls: list = field(default_factory=list)
    start: float = 0.5

    def evaluate(self, model, df, stream_set, teacher=False):
        return self.start

    def forward_flops(self, model):
        return 2.0

    def retrain(self, model, config, train, val, stream_set, seed):
        self.calls.append(config)
        n = max(1, round(config.params["data_fraction"] * len(train)))
        e = config.params["epochs"]
        frac = n / len(train)
        acc = [0.9 - 1 / (2.5 * (k * frac) + 2.5) for k in range(1, e + 1)]
        flops = e * (3.0 * n + 1.0 * len(val))
        return model, Report(e, flops, acc, n, len(val))


@dataclass
class Model:
    hidden: int = 64


@dataclass
class Win:
    train: pd.DataFrame
    val: pd.DataFrame
    index: int = 1


def window(n_train=200, n_val=50, index=1):
    return Win(pd.DataFrame({"teacher_label": np.zeros(n_train, int)}),
               pd.DataFrame({"teacher_label": np.zeros(n_val, int)}), index)


SPACE = {
    f"full_f{f}_e{e}": RetrainConfig(f"full_f{f}_e{e}",
                                     {"frozen": False, "hidden": 64, "epochs": e, "data_fraction": f})
    for f in (0.5, 1.0) for e in (2, 5, 10)
}


def test_one_trial_per_family_and_extrapolation_close_to_truth():
    learner = FakeLearner()
    mp = MicroProfiler(sample_fraction=0.1, epochs=5, val_samples=0)
    pred = mp.profile("cam", learner, Model(), window(), None, SPACE, seed=0, gflops=1e-9)
    assert len(learner.calls) == 1  # all six configs share one family
    assert len({family_of(c) for c in SPACE.values()}) == 1
    for c in pred.profile.configs:
        p = SPACE[c.config].params
        x = p["epochs"] * p["data_fraction"]
        truth = 0.9 - 1 / (2.5 * x + 2.5)
        assert c.accuracy == pytest.approx(truth, abs=0.02)
        # cost from measured per-sample work: epochs * (3 * n_train + 1 * n_val) FLOPs at 1 FLOP/s
        n = round(p["data_fraction"] * 200)
        assert c.cost == pytest.approx(p["epochs"] * (3.0 * n + 50), rel=1e-9)
    # every pass is charged: the trial's training and validation, and the start point's evaluation
    # of the deployed model on all 50 validation samples at 2 FLOPs each
    assert pred.cost == pytest.approx(5 * (3.0 * 20 + 50) + 50 * 2.0)


def test_pruning_drops_configs_far_from_the_frontier_and_keeps_a_minimum():
    mp = MicroProfiler(sample_fraction=0.1, epochs=5, prune_every=1, prune_fraction=0.5, min_configs=2, val_samples=0)
    learner = FakeLearner()
    mp.profile("cam", learner, Model(), window(), None, SPACE, seed=0, gflops=1e-9)
    kept = mp.candidates("cam", SPACE)
    assert len(kept) == 3
    for _ in range(5):
        mp.profile("cam", learner, Model(), window(), None, SPACE, seed=0, gflops=1e-9)
    assert len(mp.candidates("cam", SPACE)) == 2
    restored = MicroProfiler()
    restored.restore(mp.state())
    assert restored.candidates("cam", SPACE) == mp.candidates("cam", SPACE)


def test_pareto_gap_is_zero_on_the_frontier():
    acc = np.array([0.6, 0.7, 0.65, 0.8])
    cost = np.array([1.0, 2.0, 3.0, 4.0])
    assert pareto_gap(acc, cost).tolist() == pytest.approx([0.0, 0.0, 0.05, 0.0])


def test_profiling_time_delays_retraining_and_can_leave_no_time():
    mp = MicroProfiler(trial_share=0.5, profiling_fraction=0.5)
    # 1 accelerator: one trial slot at a 0.5 share, linear rate 0.5 -> 10 accelerator-seconds take 20 s
    assert mp.wall_seconds(10.0, 1, lambda s: s) == pytest.approx(20.0)
    assert mp.wall_seconds(10.0, 4, lambda s: s) == pytest.approx(5.0)
    assert mp.wall_seconds(0.0, 1, lambda s: s) == 0.0
    # meanwhile the trials hold half of the accelerators, which inference cannot use
    assert mp.held_fraction(1) == 0.5 and mp.held_fraction(4) == 0.5


def test_a_trial_is_reused_while_young_and_the_stream_is_stable():
    learner = FakeLearner()
    mp = MicroProfiler(sample_fraction=0.1, epochs=5, val_samples=0, reuse_windows=2, reuse_drift=0.05)
    first = mp.profile("cam", learner, Model(), window(index=1), None, SPACE, seed=0, gflops=1e-9)
    assert len(learner.calls) == 1 and first.cost > 0
    again = mp.profile("cam", learner, Model(), window(index=2), None, SPACE, seed=0, gflops=1e-9)
    # a reused trial costs nothing, but the start point is measured anew (50 samples x 2 FLOPs)
    assert len(learner.calls) == 1 and again.cost == pytest.approx(100.0) and all(t.reused for t in again.trials)
    assert [c.accuracy for c in again.profile.configs] == [c.accuracy for c in first.profile.configs]
    # two windows old: profiled again
    mp.profile("cam", learner, Model(), window(index=3), None, SPACE, seed=0, gflops=1e-9)
    assert len(learner.calls) == 2


def test_a_drifted_stream_is_profiled_again_and_a_small_shift_moves_the_curve():
    learner = FakeLearner()
    mp = MicroProfiler(sample_fraction=0.1, epochs=5, val_samples=0, reuse_windows=5, reuse_drift=0.05)
    first = mp.profile("cam", learner, Model(), window(index=1), None, SPACE, seed=0, gflops=1e-9)
    learner.start = 0.52  # within reuse_drift: reused, carried to the new start (same fraction of the error closed)
    shifted = mp.profile("cam", learner, Model(), window(index=2), None, SPACE, seed=0, gflops=1e-9)
    assert len(learner.calls) == 1
    for a, b in zip(first.profile.configs, shifted.profile.configs):
        assert b.accuracy == pytest.approx(transfer(a.accuracy, 0.5, 0.52))
        assert b.accuracy - 0.52 == pytest.approx((a.accuracy - 0.5) * (1 - 0.52) / (1 - 0.5))
    learner.start = 0.7  # the scene changed: a fresh trial
    mp.profile("cam", learner, Model(), window(index=3), None, SPACE, seed=0, gflops=1e-9)
    assert len(learner.calls) == 2
    restored = MicroProfiler(reuse_windows=5, reuse_drift=0.05)
    restored.restore(mp.state())
    assert restored.reusable("cam", family_of(SPACE["full_f0.5_e2"]), 4, 0.7) is not None


def test_profiling_mode_reads_but_never_stores_trials():
    learner = FakeLearner()
    mp = MicroProfiler(sample_fraction=0.1, epochs=5, val_samples=0, reuse_windows=3, reuse_drift=0.05)
    mp.profile("cam", learner, Model(), window(index=1), None, SPACE, seed=0, gflops=1e-9, every_config=True)
    assert mp.trials == {}
    mp.profile("cam", learner, Model(), window(index=1), None, SPACE, seed=0, gflops=1e-9)
    mp.profile("cam", learner, Model(), window(index=1), None, SPACE, seed=0, gflops=1e-9, every_config=True)
    assert len(learner.calls) == 2


@pytest.mark.parametrize("key, value, allowed", [
    ("family", "cubic", str(list(FAMILIES))),
    ("sample_fraction", 0.0, "(0, 1]"),
    ("sample_fraction", 1.5, "(0, 1]"),
    ("epochs", 1, ">= 2"),
    ("prune_fraction", -0.1, "[0, 1]"),
    ("min_configs", 0, ">= 1"),
    ("trial_share", 0.0, "(0, 1]"),
    ("profiling_fraction", 2.0, "(0, 1]"),
    ("val_samples", -1, ">= 0"),
    ("reuse_windows", 0, ">= 1"),
    ("reuse_drift", -0.01, ">= 0"),
])
def test_a_bad_option_fails_at_construction_naming_the_key_and_what_is_allowed(key, value, allowed):
    with pytest.raises(EkyaError) as e:
        MicroProfiler(**{key: value})
    message = str(e.value)
    assert message.startswith(f"profiler.{key} must be ") and allowed in message and repr(value) in message


def test_every_family_curvefit_knows_is_accepted():
    assert [MicroProfiler(family=f).family for f in FAMILIES] == list(FAMILIES)


# -- a real learner with per-job work of its own: iCaRL ----------------------------------------------

@pytest.fixture(scope="module")
def icarl_setup(small_synthetic):
    """An iCaRL model one job past its base (a full memory) and the windows it continues on."""
    from ekya.learners.icarl import ICaRLLearner
    from ekya.streams.windows import WindowCut, cut_windows

    cut = WindowCut(100.0, history_weight=0.5, val_fraction=0.2, probe_fraction=0.0)
    windows = cut_windows(small_synthetic.camera("cam01"), 4, cut, seed=3)
    learner = ICaRLLearner(icarl={"memory": 30}, base_epochs=2, accelerator="cpu")
    model = learner.base_model(small_synthetic, windows[0], seed=0)
    model, _ = learner.retrain(model, RetrainConfig("full_e2", {"frozen": False, "epochs": 2, "lr": 0.002}),
                               windows[1].train, windows[1].val, small_synthetic, seed=1)
    return learner, model, windows


@pytest.mark.parametrize("frozen", [False, True], ids=["full", "frozen"])
def test_icarl_full_jobs_cost_what_the_trial_predicts_memory_and_per_job_passes_included(
        icarl_setup, small_synthetic, frozen):
    learner, model, windows = icarl_setup
    w = windows[3]  # its pool holds part of the memory: the overlap matters
    space = {n: RetrainConfig(n, {"frozen": frozen, "lr": 0.002, "epochs": e, "data_fraction": f})
             for n, e, f in (("own", 2, 0.5), ("f1_e2", 2, 1.0), ("f1_e5", 5, 1.0))}
    mp = MicroProfiler(sample_fraction=0.5, epochs=2, val_samples=0)
    pred = mp.profile("cam01", learner, model, w, small_synthetic, space, seed=11, gflops=1.0)
    trial = pred.trials[0]
    # the trial itself, rerun as a job (same name and seed: the same subsample)
    _, report = learner.retrain(model, RetrainConfig("own@micro", dict(space["own"].params)), w.train, w.val,
                                small_synthetic, seed=11)
    assert trial.cost == report.train_flops / 1e9
    n_train = int((w.train["teacher_label"] >= 0).sum())
    assert 0 < trial.extra_overlap < 1 and trial.extra_train_samples == len(model.memory)
    # progress counts the window's samples only: the memory rides along every epoch but is no progress
    assert trial.progress[1:] == pytest.approx([k * report.train_samples / n_train for k in (1, 2)])
    cost = {c.config: c.cost for c in pred.profile.configs}
    for name in ("f1_e2", "f1_e5"):
        _, real = learner.retrain(model, space[name], w.train, w.val, small_synthetic, seed=11)
        # Whole-pool jobs: the pool (window + memory less their overlap) is known exactly, as are the
        # teacher, herding and NME passes per sample (memory full, every class in the pool). A trained
        # backbone needs a flipped pass over every exemplar: exact. A frozen one only over the new
        # exemplars, and how many herding takes from the window depends on the pool: here 3 % under.
        assert cost[name] == pytest.approx(real.train_flops / 1e9, rel=0.05 if frozen else 1e-9)
        if frozen:
            assert cost[name] - trial.fixed_flops / 1e9 == pytest.approx(
                (real.train_flops - real.fixed_flops) / 1e9, rel=1e-9)
        # scaling the window's samples alone (the formula before) under-predicts by far more
        window_only = (trial.pass_flops[0] * (n_train + len(w.val)) + real.epochs * (
            trial.pass_flops[1] * n_train + trial.pass_flops[2] * len(w.val))) / 1e9
        assert real.train_flops / 1e9 - window_only > 5 * abs(cost[name] - real.train_flops / 1e9)
    # At a data fraction below 1 how many exemplars the subsample holds is a draw (the report gives
    # the whole pool's overlap): beside the new exemplars' flipped pass (frozen), that is the only
    # error: the samples mispredicted times their cost.
    _, own = learner.retrain(model, space["own"], w.train, w.val, small_synthetic, seed=11)
    per_epoch = own.samples_seen / own.epochs
    assert own.train_samples < per_epoch < own.train_samples + own.extra_train_samples
    guess = own.train_samples * (1 - trial.extra_overlap) + trial.extra_train_samples
    per_sample = trial.pass_flops[0] + trial.train_once_flops + own.epochs * trial.pass_flops[1]
    error = (cost["own"] - trial.fixed_flops / 1e9) - (own.train_flops - own.fixed_flops) / 1e9
    assert error == pytest.approx((guess - per_epoch) * per_sample / 1e9, rel=1e-6)
    assert cost["own"] == pytest.approx(own.train_flops / 1e9, rel=0.05)  # here 3 % (full), 4 % (frozen)


def test_icarl_curve_is_moved_to_the_accuracy_the_model_serves(icarl_setup, small_synthetic):
    learner, model, windows = icarl_setup
    w = windows[2]
    space = {"f1": RetrainConfig("f1", {"frozen": True, "lr": 0.002, "epochs": 4, "data_fraction": 1.0})}
    mp = MicroProfiler(sample_fraction=0.5, epochs=2, val_samples=0)
    pred = mp.profile("cam01", learner, model, w, small_synthetic, space, seed=5, gflops=1.0)
    _, report = learner.retrain(model, RetrainConfig("f1@micro", {**space["f1"].params, "epochs": 2,
                                                                  "data_fraction": 0.5}),
                                w.train, w.val, small_synthetic, seed=5)
    trained = np.asarray(pred.trials[0].val_acc[1:])
    # the start point is the served (NME) accuracy; the trained points are moved by the measured gap
    assert pred.trials[0].val_acc[0] == learner.evaluate(model, w.val, small_synthetic, teacher=True)
    assert trained.max() == pytest.approx(report.val_accuracy, abs=1e-12)
    assert trained - trained.max() == pytest.approx(np.asarray(report.val_acc) - max(report.val_acc), abs=1e-12)


def test_transfer_carries_a_trial_as_the_same_fraction_of_error_or_accuracy():
    assert transfer(0.8, 0.6, 0.6) == 0.8  # the trial's own camera: read as it is
    assert transfer(0.8, 0.6, 0.2) == pytest.approx(0.2 + 0.8 * 0.5)  # half the error closed
    assert transfer(0.8, 0.6, 0.9) == pytest.approx(0.95)
    assert transfer(0.3, 0.6, 0.8) == pytest.approx(0.4)  # a loss keeps half the accuracy
    assert transfer(0.9, 1.0, 0.5) == pytest.approx(0.45)  # nothing left to close at the trial: no gain


@dataclass
class PerCameraLearner(FakeLearner):
    """Each camera's deployed model has its own accuracy (the model says which camera it serves)."""

    starts: dict = field(default_factory=dict)
    evaluated: list = field(default_factory=list)

    def evaluate(self, model, df, stream_set, teacher=False):
        self.evaluated.append(len(df))
        return self.starts[model.camera]

    def retrain(self, model, config, train, val, stream_set, seed):
        out = super().retrain(model, config, train, val, stream_set, seed)
        self.calls[-1] = (model.camera, config)  # which camera's model the trial trained
        return out


@dataclass
class CamModel:
    camera: str
    hidden: int = 64


def test_fleet_trials_run_once_on_the_camera_furthest_behind_and_serve_every_camera():
    learner = PerCameraLearner(starts={"a": 0.9, "b": 0.4, "c": 0.7})
    mp = MicroProfiler(sample_fraction=0.1, epochs=5, val_samples=0, reuse_windows=2, fleet_trials=True,
                       start_data="all")
    cams = {c: (CamModel(c), window(index=1)) for c in "abc"}
    preds = mp.profile_fleet(cams, learner, None, SPACE, lambda c: 0, gflops=1e-9)
    assert [cam for cam, _ in learner.calls] == ["b"]  # one family, one trial, on the camera furthest behind
    assert set(mp.trials) == {FLEET}
    # only b paid for the trial; every camera paid for its own start measurement
    start_cost = 50 * 2.0 / 1.0
    assert preds["a"].cost == pytest.approx(start_cost) and preds["c"].cost == pytest.approx(start_cost)
    assert preds["b"].cost > start_cost and not any(t.reused for t in preds["b"].trials)
    # each camera's prediction is the trial carried to its own start: more to gain, more gained
    for name in SPACE:
        got = {c: preds[c].profile.config(name).accuracy for c in "abc"}
        assert got["a"] == pytest.approx(transfer(got["b"], 0.4, 0.9))
        assert got["a"] - 0.9 < got["c"] - 0.7 < got["b"] - 0.4
    # the next window reuses the fleet trial; after reuse_windows a new one runs
    mp.profile_fleet({c: (CamModel(c), window(index=2)) for c in "abc"}, learner, None, SPACE, lambda c: 0, 1e-9)
    assert len(learner.calls) == 1
    mp.profile_fleet({c: (CamModel(c), window(index=3)) for c in "abc"}, learner, None, SPACE, lambda c: 0, 1e-9)
    assert len(learner.calls) == 2


def test_the_start_accuracy_is_measured_on_the_newest_labelled_data_and_served_frames_are_free():
    learner = PerCameraLearner(starts={"a": 0.5})
    win = Win(pd.DataFrame({"teacher_label": np.zeros(100, int)}), pd.DataFrame({"teacher_label": np.zeros(30, int)}),
              2)
    newest = pd.DataFrame({"teacher_label": np.zeros(20, int)})
    mp = MicroProfiler(sample_fraction=0.1, epochs=5, val_samples=0, start_data="newest")
    start, cost, data = mp.measure_start(learner, CamModel("a"), win, None, gflops=1e-9, newest=(newest, 15))
    assert data is newest and start == 0.5 and cost == pytest.approx(5 * 2.0)  # 15 of 20 frames it served: free
    everything = MicroProfiler(start_data="all")
    start, cost, data = everything.measure_start(learner, CamModel("a"), win, None, 1e-9, newest=(newest, 15))
    assert data is win.val and cost == pytest.approx(30 * 2.0)
    with pytest.raises(EkyaError, match="profiler.start_data"):
        MicroProfiler(start_data="latest")


def test_a_job_is_predicted_at_its_best_epoch_not_at_its_last():
    """A falling trial curve (the model gets worse with more training) predicts the job's best epoch."""

    class Falling(FakeLearner):
        def retrain(self, model, config, train, val, stream_set, seed):
            model, report = super().retrain(model, config, train, val, stream_set, seed)
            report.val_acc = [0.5 - 0.02 * k for k in range(1, len(report.val_acc) + 1)]
            return model, report

    mp = MicroProfiler(sample_fraction=0.1, epochs=5, val_samples=0)
    pred = mp.profile("cam", Falling(), Model(), window(), None, SPACE, seed=0, gflops=1e-9)
    got = {c.config: c.accuracy for c in pred.profile.configs}
    for f in (0.5, 1.0):  # more epochs cannot make a job worse: it serves its best one, here its first
        assert got[f"full_f{f}_e10"] == pytest.approx(got[f"full_f{f}_e2"]) == pytest.approx(got[f"full_f{f}_e5"])
