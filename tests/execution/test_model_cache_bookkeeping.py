"""The emulate model cache's bookkeeping, with a counting learner: what is offered, what is charged, observables."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ekya.execution.model_cache import ModelCache, chunk_observables
from ekya.plans.budget import make_budget
from ekya.plans.schedulers.model_cache import CacheRequest
from ekya.profiles.types import RetrainConfig, StreamProfile

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


def _runtime(request: CacheRequest, carry_over: bool = True, windows: int = 4):
    T, n = 10.0, 20
    frames = []
    for cam in ("a", "b"):
        ts = np.arange(windows * n) * (T / n)
        frames.append(pd.DataFrame({"camera": cam, "timestamp": ts, "teacher_label": (ts // T).astype(int) % 3}))
    samples = pd.concat(frames, ignore_index=True)
    win = lambda k: SimpleNamespace(train=None, val=pd.DataFrame({"x": range(8)}))  # noqa: E731
    learner = CountingLearner()
    rt = SimpleNamespace(
        space={"c1": RetrainConfig("c1"), "c2": RetrainConfig("c2")}, streams=["a", "b"],
        base={"a": FakeModel("baseA"), "b": FakeModel("baseB")},
        windows_of={cam: [win(k) for k in range(windows)] for cam in ("a", "b")},
        stream_set=SimpleNamespace(classes=("x", "y", "z"), camera=lambda c: samples[samples["camera"] == c]),
        budget=make_budget(1, T, 0.1), settings=configured_window(seconds=T, carry_over=carry_over), seed=0,
        learner=learner, gflops=2.0, scheduler=SimpleNamespace(name="fake"),
        live_accuracy=lambda cam, model, k: (0.7, ()))
    return rt, ModelCache(rt, request)


def test_pretrained_pass_trains_each_window_once_from_the_previous_model():
    rt, cache = _runtime(CacheRequest("pretrained"))
    cache.start_window(3)
    assert [c.name for c in cache.offered["a"]] == ["cache:w0", "cache:w1", "cache:w2"]
    assert [c.model.name for c in cache.offered["a"]] == ["baseA", "baseA>c1", "baseA>c1>c1"]
    n = len(rt.learner.retrained)
    cache.start_window(3)
    assert len(rt.learner.retrained) == n  # nothing retrained twice
    rt2, cache2 = _runtime(CacheRequest("pretrained", cross_camera=True, config="c2"), carry_over=False)
    cache2.start_window(2)
    assert [c.name for c in cache2.offered["a"]] == ["cache:w0", "cache:w1", "cache:b:w0", "cache:b:w1"]
    assert cache2.offered["a"][1].model.name == "baseA>c2"  # without carry-over: from the base model


def test_served_cache_offers_earlier_live_models_but_not_the_serving_one():
    rt, cache = _runtime(CacheRequest("served", measure=True))
    cache.start_window(1)
    assert cache.offered["a"] == []  # the base model serves: nothing else exists yet
    cache.went_live("a", 1, "c1", FakeModel("m1"))
    cache.start_window(2)
    assert [c.name for c in cache.offered["a"]] == ["cache:w0"]
    cache.went_live("a", 2, "cache:w0", rt.base["a"])  # the thief switched back to the base model
    cache.start_window(3)
    assert [(c.name, c.model.name) for c in cache.offered["a"]] == [("cache:w1", "m1")]
    assert rt.learner.retrained == []  # the served cache trains nothing


def test_measured_candidates_are_told_by_val_accuracy_and_charged_as_inference_passes():
    rt, cache = _runtime(CacheRequest("served", measure=True))
    cache.start_window(1)
    cache.went_live("a", 1, "c1", FakeModel("m1"))
    rt.learner.accuracy.update({"baseA": 0.61})
    cache.start_window(2)
    told, cost = cache.tell("a", StreamProfile("a", 0.5))
    (c,) = told.configs
    assert (c.config, c.accuracy, c.cost) == ("cache:w0", 0.61, 0.0)
    assert cost == pytest.approx(8 * FLOPS / (2.0 * 1e9))  # 8 validation samples, one pass each
    assert told.observables["window"] == 2 and c.observables["window"] == 0
    unmeasured = _runtime(CacheRequest("pretrained"))[1]
    unmeasured.start_window(2)
    told, free = unmeasured.tell("a", StreamProfile("a", 0.5))
    assert free == 0.0 and all(math.isnan(c.accuracy) for c in told.configs)


def test_chunk_observables_count_the_previous_chunk_only():
    df = pd.DataFrame({"timestamp": [0.0, 1.0, 10.0, 11.0, 12.0, 15.0], "teacher_label": [0, 0, 1, 2, -1, 2],
                       "time_of_day": ["day", "day", "night", "night", "day", "night"]})
    obs = chunk_observables(df, 3, 10.0, 10.0)
    assert obs["class_distribution"] == pytest.approx([0.0, 1 / 3, 2 / 3])  # the unlabelled row is left out
    assert obs["object_count"] == pytest.approx(0.4) and obs["time_of_day"] == "night"
    assert "location" not in chunk_observables(df, 3, 0.0, 10.0)  # no such column: not invented
