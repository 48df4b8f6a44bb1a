"""Learning without forgetting: the distillation term keeps the retrained model near the one it started from."""

from __future__ import annotations

import pytest
import torch

from ekya.configspace import RetrainConfig
from ekya.errors import EkyaError
from ekya.learners import FinetuneLearner
from ekya.streams.samples import StreamSet
from ekya.streams.windows import WindowCut, cut_windows


def test_distillation_keeps_outputs_on_old_data_near_the_starting_model(small_synthetic: StreamSet) -> None:
    drift = small_synthetic.meta["drift"]
    cam = max(drift, key=drift.get)  # the hardest-drifting camera: late data differs most from early
    cut = WindowCut(100.0, history_weight=0, val_fraction=0.2, probe_fraction=0.0)
    w = cut_windows(small_synthetic.camera(cam), 4, cut, seed=5)
    plain = FinetuneLearner(base_epochs=8)
    lwf = FinetuneLearner(base_epochs=8, lwf={"weight": 1.0, "temperature": 2.0})
    base, _ = plain.fit_base(small_synthetic, w[0], seed=0)
    cfg = RetrainConfig("c", {"epochs": 8, "batch_size": 16, "lr": 0.003})
    # Window 3 trains on window 2's data only; window 0's samples are the old data.
    tuned, tuned_report = plain.retrain(base, cfg, w[3].train, w[3].val, small_synthetic, seed=1)
    kept, kept_report = lwf.retrain(base, cfg, w[3].train, w[3].val, small_synthetic, seed=1)

    old = plain.crops(small_synthetic).images(w[0].train)
    with torch.no_grad():
        p0 = torch.softmax(base.eval()(old), dim=1)

        def drift_from_base(model: torch.nn.Module) -> float:
            p = torch.softmax(model.eval()(old), dim=1)
            return float((p0 * (p0.clamp_min(1e-12).log() - p.clamp_min(1e-12).log())).sum(dim=1).mean())

        d_tuned, d_kept = drift_from_base(tuned), drift_from_base(kept)
    print(f"KL(base || new) on old data: fine-tuning {d_tuned:.3f}, LwF {d_kept:.3f}")
    assert d_kept < 0.85 * d_tuned
    # The teacher's logits cost one forward pass per training sample, charged once per job.
    n = len(w[3].train)
    assert kept_report.samples_seen == tuned_report.samples_seen
    assert kept_report.train_flops == pytest.approx(tuned_report.train_flops + n * plain.forward_flops(base))


def test_base_training_does_not_distil_from_an_untrained_model(small_synthetic: StreamSet) -> None:
    cam = small_synthetic.cameras[1]
    cut = WindowCut(100.0, history_weight=0, val_fraction=0.2, probe_fraction=0.0)
    w = cut_windows(small_synthetic.camera(cam), 2, cut, seed=5)
    a, ra = FinetuneLearner(base_epochs=2).fit_base(small_synthetic, w[0], seed=0)
    b, rb = FinetuneLearner(base_epochs=2, lwf={"weight": 1.0}).fit_base(small_synthetic, w[0], seed=0)
    assert ra.train_flops == rb.train_flops
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_bad_lwf_keys_are_named() -> None:
    with pytest.raises(EkyaError, match="learner.lwf.weight"):
        FinetuneLearner(lwf={"weight": -1})
    with pytest.raises(EkyaError, match="learner.lwf.temperature"):
        FinetuneLearner(lwf={"weight": 1, "temperature": 0})
    with pytest.raises(EkyaError, match="learner.lwf: unknown"):
        FinetuneLearner(lwf={"alpha": 1})
