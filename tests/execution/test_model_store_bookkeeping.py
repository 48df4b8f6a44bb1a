"""The emulate model store's bookkeeping, with a counting learner: what is offered, what is charged, observables."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ekya.configspace import RetrainConfig
from ekya.execution.model_store import ModelStore, chunk_observables
from ekya.execution.retraining import RetrainingService
from ekya.plans.schedulers.model_cache import CacheRequest
from ekya.profiles.types import StreamProfile

from helpers.windows import configured_window

FLOPS = 5e8  # per forward pass of every fake model


@dataclass
class FakeModel:
    name: str


@dataclass
class CountingLearner:
    """Retrains by naming the new model after its parent; accuracy is looked up; every call is counted."""

    accuracy: dict = field(default_factory=dict)
    retrained: list = field(default_factory=list)

    def retrain(self, model, config, train, val, stream_set, seed):
        self.retrained.append((model.name, config.name))
        return FakeModel(f"{model.name}>{config.name}"), None

    def evaluate(self, model, df, stream_set, teacher=False):
        return self.accuracy.get(model.name, 0.5)

    def forward_flops(self, model):
        return FLOPS

    def model_state(self, model):
        return {"name": model.name}

    def load_model_state(self, state):
        return FakeModel(state["name"])


BASE = {"a": FakeModel("baseA"), "b": FakeModel("baseB")}


def _store(request: CacheRequest, carry_over: bool = True, windows: int = 4) -> tuple[CountingLearner, ModelStore]:
    """A store on a retraining service with two cameras, a counting learner and fake windows."""
    T, n = 10.0, 20
    frames = []
    for cam in ("a", "b"):
        ts = np.arange(windows * n) * (T / n)
        frames.append(pd.DataFrame({"camera": cam, "timestamp": ts, "teacher_label": (ts // T).astype(int) % 3}))
    samples = pd.concat(frames, ignore_index=True)
    win = lambda k: SimpleNamespace(train=None, val=pd.DataFrame({"x": range(8)}))  # noqa: E731
    learner = CountingLearner()
    service = RetrainingService(
        stream_set=SimpleNamespace(classes=("x", "y", "z"), camera=lambda c: samples[samples["camera"] == c]),
        learner=learner, space={"c1": RetrainConfig("c1"), "c2": RetrainConfig("c2")}, profiler=None,
        settings=configured_window(seconds=T, carry_over=carry_over),
        windows_of={cam: [win(k) for k in range(windows)] for cam in ("a", "b")}, seed=0, gflops=2.0)
    return learner, ModelStore(service, SimpleNamespace(name="fake"), request)


def test_pretrained_pass_trains_each_window_once_from_the_previous_model():
    learner, store = _store(CacheRequest("pretrained"))
    store.start_window(3, BASE)
    assert [c.name for c in store.offered["a"]] == ["cache:w0", "cache:w1", "cache:w2"]
    assert [c.model.name for c in store.offered["a"]] == ["baseA", "baseA>c1", "baseA>c1>c1"]
    n = len(learner.retrained)
    store.start_window(3, BASE)
    assert len(learner.retrained) == n  # nothing retrained twice
    _, store2 = _store(CacheRequest("pretrained", cross_camera=True, config="c2"), carry_over=False)
    store2.start_window(2, BASE)
    assert [c.name for c in store2.offered["a"]] == ["cache:w0", "cache:w1", "cache:b:w0", "cache:b:w1"]
    assert store2.offered["a"][1].model.name == "baseA>c2"  # without carry-over: from the base model


def test_served_cache_offers_earlier_live_models_but_not_the_serving_one():
    learner, store = _store(CacheRequest("served", measure=True))
    store.start_window(1, BASE)
    assert store.offered["a"] == []  # the base model serves: nothing else exists yet
    store.went_live("a", 1, "c1", FakeModel("m1"))
    store.start_window(2, BASE)
    assert [c.name for c in store.offered["a"]] == ["cache:w0"]
    store.went_live("a", 2, "cache:w0", BASE["a"])  # the thief switched back to the base model
    store.start_window(3, BASE)
    assert [(c.name, c.model.name) for c in store.offered["a"]] == [("cache:w1", "m1")]
    assert learner.retrained == []  # the served cache trains nothing


def test_measured_candidates_are_told_by_val_accuracy_and_charged_as_inference_passes():
    learner, store = _store(CacheRequest("served", measure=True))
    store.start_window(1, BASE)
    store.went_live("a", 1, "c1", FakeModel("m1"))
    learner.accuracy.update({"baseA": 0.61})
    store.start_window(2, BASE)
    told, cost = store.tell("a", StreamProfile("a", 0.5))
    (c,) = told.configs
    assert (c.config, c.accuracy, c.cost) == ("cache:w0", 0.61, 0.0)
    assert cost == pytest.approx(8 * FLOPS / (2.0 * 1e9))  # 8 validation samples, one pass each
    assert told.observables["window"] == 2 and c.observables["window"] == 0
    unmeasured = _store(CacheRequest("pretrained"))[1]
    unmeasured.start_window(2, BASE)
    told, free = unmeasured.tell("a", StreamProfile("a", 0.5))
    assert free == 0.0 and all(math.isnan(c.accuracy) for c in told.configs)


def test_chunk_observables_count_the_previous_chunk_only():
    df = pd.DataFrame({"timestamp": [0.0, 1.0, 10.0, 11.0, 12.0, 15.0], "teacher_label": [0, 0, 1, 2, -1, 2],
                       "time_of_day": ["day", "day", "night", "night", "day", "night"]})
    obs = chunk_observables(df, 3, 10.0, 10.0)
    assert obs["class_distribution"] == pytest.approx([0.0, 1 / 3, 2 / 3])  # the unlabelled row is left out
    assert obs["object_count"] == pytest.approx(0.4) and obs["time_of_day"] == "night"
    assert "location" not in chunk_observables(df, 3, 0.0, 10.0)  # no such column: not invented
