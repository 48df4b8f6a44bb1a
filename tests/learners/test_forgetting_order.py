"""On a stream whose class mix changes and later returns, iCaRL and replay forget less than plain fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest

from ekya.configspace import RetrainConfig
from ekya.labels.teachers import GroundTruthTeacher, apply_teacher
from ekya.learners import FinetuneLearner
from ekya.learners.base import Learner
from ekya.learners.icarl import ICaRLLearner
from ekya.results.continual import continual_metrics
from ekya.streams.samples import StreamSet
from ekya.streams.synthetic import load_synthetic
from ekya.streams.windows import Window, WindowCut, cut_windows

WINDOWS, SECONDS = 6, 100.0
#: the classes each chunk shows: the first three, then the other three, then the first three again
PHASES = {0: {0, 1, 2}, 1: {0, 1, 2}, 2: {3, 4, 5}, 3: {3, 4, 5}, 4: {0, 1, 2}, 5: {0, 1, 2}}


@pytest.fixture(scope="module")
def recurring(tmp_path_factory: pytest.TempPathFactory) -> tuple[StreamSet, list[Window]]:
    """One camera of the recurring-scene stream, each chunk keeping only its phase's classes."""
    ss = apply_teacher(load_synthetic(tmp_path_factory.mktemp("recur"), seed=0, cameras=1, chunks=WINDOWS,
                                      chunk_seconds=SECONDS, samples_per_chunk=160, image_size=40, recur=True),
                       GroundTruthTeacher())
    df = ss.camera(ss.cameras[0])
    chunk = (df["timestamp"] // SECONDS).astype(int).to_numpy()
    keep = np.array([c in PHASES[k] for c, k in zip(df["label"].to_numpy(), chunk)])
    # history_weight 0: each window retrains on the latest window alone, where forgetting shows
    cut = WindowCut(SECONDS, history_weight=0, val_fraction=0.2, probe_fraction=0.25)
    return ss, cut_windows(df[keep].reset_index(drop=True), WINDOWS, cut, seed=0)


def forgetting(learner: Learner, ss: StreamSet, windows: list[Window]) -> float:
    """Forgetting (one-window label lag) of a camera retrained every window, from its accuracy matrix."""
    model = learner.base_model(ss, windows[0], seed=0)
    served = [model]
    cfg = RetrainConfig("c", {"epochs": 4, "batch_size": 16, "lr": 0.005})
    for k in range(1, WINDOWS):
        model, _ = learner.retrain(model, cfg, windows[k].train, windows[k].val, ss, seed=k)
        served.append(model)
    R = np.array([[learner.evaluate(m, w.probe, ss) for w in windows[1:]] for m in served])
    print(type(learner).__name__, np.round(R, 2).tolist())
    return continual_metrics(R, lag=1)["forgetting"]


@pytest.mark.slow
def test_icarl_and_replay_forget_less_than_fine_tuning(recurring) -> None:
    ss, windows = recurring
    plain = forgetting(FinetuneLearner(base_epochs=6), ss, windows)
    replay = forgetting(FinetuneLearner(base_epochs=6, replay={"buffer": "reservoir", "memory": 60}), ss, windows)
    icarl = forgetting(ICaRLLearner(base_epochs=6, icarl={"memory": 60}), ss, windows)
    print(f"forgetting: fine-tuning {plain:.3f}, replay {replay:.3f}, iCaRL {icarl:.3f}")
    # Fine-tuning loses the first phase to the middle one; a memory keeps much of it (last measured:
    # fine-tuning 0.27, replay 0.09, iCaRL 0.08). Fine-tuning's last job, eight steps on the returned
    # classes, no longer relearns them over a middle phase learnt with BatchNorm statistics of its own;
    # before whole-model jobs learnt those, it did, losing the middle phase too (0.68).
    assert plain > 0.2
    assert replay < 0.5 * plain and icarl < 0.75 * plain
