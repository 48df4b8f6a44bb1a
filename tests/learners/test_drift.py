"""THE drift test: on the synthetic stream, a stale model decays and retraining on recent data recovers.

The hardest-drifting camera of the default synthetic dataset (150 samples per window): a base model
trained on window 0 must lose at least 15 accuracy points on windows 1-5 compared with its own
held-out window-0 accuracy, and retraining each window on the previous window's teacher-labelled
data (carrying the model over, the project's default) must win back at least half of that loss.
"""

from __future__ import annotations

import numpy as np

from ekya.configspace import RetrainConfig
from ekya.labels.teachers import GroundTruthTeacher, apply_teacher
from ekya.learners import FinetuneLearner
from ekya.streams.synthetic import load_synthetic
from ekya.streams.windows import WindowCut, cut_windows


def test_drift_hurts_a_stale_model_and_retraining_recovers(tmp_path_factory) -> None:
    ss = load_synthetic(tmp_path_factory.mktemp("drift"), seed=0, cameras=6, chunks=6, chunk_seconds=200.0,
                        samples_per_chunk=150, image_size=40)
    ss = apply_teacher(ss, GroundTruthTeacher())
    drift = ss.meta["drift"]
    cam = max(drift, key=drift.get)
    cut = WindowCut(200.0, history_weight=0.0, val_fraction=0.2, probe_fraction=0.0)
    windows = cut_windows(ss.camera(cam), 6, cut, seed=1)
    learner = FinetuneLearner(backbone="resnet10_w16", hidden=256, image_size=32, base_epochs=15)

    base = learner.base_model(ss, windows[0], seed=0)
    start = learner.evaluate(base, windows[0].val, ss)  # held out of the base model's training
    stale = [learner.evaluate(base, w.test, ss) for w in windows[1:]]

    config = RetrainConfig("full_e5", {"frozen": False, "epochs": 5, "data_fraction": 1.0, "lr": 0.001})
    model, fresh = base, []
    for w in windows[1:]:
        model, _ = learner.retrain(model, config, w.train, w.val, ss, seed=100 + w.index)
        fresh.append(learner.evaluate(model, w.test, ss))

    loss = start - float(np.mean(stale))
    recovered = float(np.mean(fresh)) - float(np.mean(stale))
    print(f"\ncamera {cam} (drift {drift[cam]}): window-0 held-out accuracy {start:.3f}")
    print(f"stale base model on windows 1-5: {np.round(stale, 3).tolist()} (mean {np.mean(stale):.3f})")
    print(f"retrained each window:          {np.round(fresh, 3).tolist()} (mean {np.mean(fresh):.3f})")
    print(f"loss {loss:.3f}, recovered {recovered:.3f} ({recovered / loss:.0%} of the loss)")
    assert loss >= 0.15
    assert recovered >= 0.5 * loss
