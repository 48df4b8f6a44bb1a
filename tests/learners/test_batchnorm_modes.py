"""BatchNorm in retraining jobs: whole-model jobs learn its statistics, head-only jobs leave them alone.

Base and retrained models are handed back in eval mode, so that is how every job receives its
starting model; the job itself decides which parts train in train mode.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ekya.configspace import RetrainConfig
from ekya.learners import FinetuneLearner
from ekya.learners.icarl import ICaRLLearner
from ekya.streams.samples import StreamSet
from ekya.streams.windows import WindowCut, cut_windows

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
WHOLE = RetrainConfig("whole_e2", {"frozen": False, "epochs": 2, "lr": 0.002, "batch_size": 16})
HEAD = RetrainConfig("head_e2", {"frozen": True, "epochs": 2, "lr": 0.003, "batch_size": 16})


def bn_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every BatchNorm buffer (running_mean, running_var, num_batches_tracked) by name."""
    return {f"{name}.{b}": t.detach().clone() for name, m in model.named_modules() if isinstance(m, _BN)
            for b, t in m.named_buffers(recurse=False)}


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def in_eval_mode(model: nn.Module) -> bool:
    return not any(m.training for m in model.modules())


@pytest.fixture(scope="module")
def windows(small_synthetic: StreamSet):
    cut = WindowCut(100.0, history_weight=-1.0, val_fraction=0.2, probe_fraction=0.0)
    return cut_windows(small_synthetic.camera("cam02"), 3, cut, seed=5)


@pytest.fixture(scope="module", params=["finetune", "icarl"])
def job_start(request, windows, small_synthetic: StreamSet):
    """(learner, its camera's base model): the model every retraining job of a run starts from first."""
    if request.param == "finetune":
        learner: FinetuneLearner = FinetuneLearner(base_epochs=1, accelerator="cpu")
    else:
        learner = ICaRLLearner(icarl={"memory": 20}, base_epochs=1, accelerator="cpu")
    return learner, learner.base_model(small_synthetic, windows[0], seed=0)


def test_a_whole_model_job_learns_batchnorm_statistics(job_start, windows, small_synthetic) -> None:
    learner, base = job_start
    assert in_eval_mode(base)  # how base (and retrained) models are handed over
    before, bn_before = state(base), bn_buffers(base)
    assert any(k.endswith("running_mean") for k in bn_before)
    w = windows[1]
    new, report = learner.retrain(base, WHOLE, w.train, w.val, small_synthetic, seed=1)
    bn_after = bn_buffers(new)
    stats = [k for k in bn_before if k.endswith(("running_mean", "running_var"))]
    moved = [k for k in stats if not torch.equal(bn_before[k], bn_after[k])]
    assert moved == stats, f"BatchNorm statistics that never saw a training batch: {sorted(set(stats) - set(moved))}"
    assert all(int(bn_after[k]) > int(bn_before[k]) for k in bn_before if k.endswith("num_batches_tracked"))
    assert in_eval_mode(new)  # it serves (and is scored) on its running statistics
    # The starting model is untouched: its weights, its statistics and its mode.
    assert all(torch.equal(before[k], v) for k, v in state(base).items()) and in_eval_mode(base)
    if not isinstance(learner, ICaRLLearner):
        # Epoch validation ran in eval mode on the weights restored: the returned model, scored the
        # same way, gets the best epoch's accuracy (train-mode validation would use batch statistics).
        assert learner.evaluate(new, w.val, small_synthetic, teacher=True) == max(report.val_acc)


def test_a_head_only_job_keeps_every_batchnorm_buffer(job_start, windows, small_synthetic) -> None:
    learner, base = job_start
    bn_before = bn_buffers(base)
    w = windows[1]
    new, _ = learner.retrain(base, HEAD, w.train, w.val, small_synthetic, seed=1)
    bn_after = bn_buffers(new)
    assert bn_after.keys() == bn_before.keys()
    assert all(torch.equal(bn_before[k], bn_after[k]) for k in bn_before)
    assert in_eval_mode(new) and in_eval_mode(base)


def test_a_one_sample_whole_model_job_trains(small_synthetic) -> None:
    """A batch of one sample has no batch statistics (at 8 px the last stage is 1x1): the job still trains."""
    learner = FinetuneLearner(image_size=8, accelerator="cpu")
    cut = WindowCut(100.0, history_weight=-1.0, val_fraction=0.2, probe_fraction=0.0)
    ws = cut_windows(small_synthetic.camera("cam03"), 2, cut, seed=2)
    model = learner.new_model(len(small_synthetic.classes), seed=0).eval()
    bn_before, before = bn_buffers(model), state(model)
    new, report = learner.retrain(model, RetrainConfig("one", {"frozen": False, "epochs": 1}), ws[1].train.iloc[:1],
                                  ws[1].val, small_synthetic, seed=0)
    assert report.train_samples == 1 and len(report.val_acc) == 1
    assert any(not torch.equal(before[k], v) for k, v in state(new).items())
    # nothing to estimate batch statistics from, so the running ones stay as they were
    assert all(torch.equal(bn_before[k], v) for k, v in bn_buffers(new).items())
    assert in_eval_mode(new)
