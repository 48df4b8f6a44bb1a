"""One device, one rate: inference keep-up shares follow from the model's FLOPs, the stream's rate and the device's."""

from __future__ import annotations

import pandas as pd
import pytest

from ekya.composition import build_runtime
from ekya.errors import EkyaError
from ekya.execution.keep_up import keep_up_share, sample_rate, with_keep_up
from ekya.plans.budget import make_budget
from ekya.plans.curves import InferenceCurve


def test_the_keep_up_share_is_the_forward_work_a_second_over_the_device_rate() -> None:
    samples = pd.DataFrame({"timestamp": [0.5, 10.0, 99.0, 150.0, 199.9, 200.0, 450.0]})
    assert sample_rate(samples, seconds=100.0, windows=2) == pytest.approx(5 / 200)
    # 30 frames/s of a 2 GFLOP forward pass on a 240 GFLOP/s device: a quarter of it
    assert keep_up_share(30.0, 2e9, 240.0) == pytest.approx(0.25)
    budget = make_budget(1, 200.0, 0.05, 2.0, inference={"max_share": "auto"},
                         stream_inference={"b": {"max_share": 0.5}})
    assert budget.derive_keep_up and budget.infer_scale.max_share == 0.25  # the stand-in until derived
    out = with_keep_up(budget, {"a": 0.02, "b": 0.03})
    a, b = out.scale_for("a"), out.scale_for("b")
    assert isinstance(a, InferenceCurve) and a.max_share == 0.02
    assert a.relative_accuracy == InferenceCurve().relative_accuracy
    assert isinstance(b, InferenceCurve) and b.max_share == 0.5  # the camera's own curve stands
    with pytest.raises(EkyaError, match="max_share"):
        with_keep_up(budget, {"a": 0.0})
    fixed = make_budget(1, 200.0, 0.05, 2.0, inference={"max_share": 0.25})
    assert with_keep_up(fixed, {"a": 0.02}) is fixed
    with pytest.raises(EkyaError, match="max_share"):
        make_budget(1, 200.0, 0.05, 2.0, inference={"max_share": "half"})


def test_emulate_prices_each_cameras_inference_at_the_accelerators_rate(make_cfg) -> None:
    """The default (max_share: auto): every camera's keep-up share is samples/s x forward FLOPs / runtime rate."""
    cfg = make_cfg("experiment=tiny", "window.forgetting=false")
    runtime, _ = build_runtime(cfg)
    runtime.setup(None)
    svc = runtime.retraining
    windows = len(svc.windows_of[runtime.streams[0]])
    for cam in runtime.streams:
        rate = sample_rate(svc.stream_set.camera(cam), cfg.window.seconds, windows)
        flops = svc.learner.forward_flops(runtime.models.serving[cam])
        curve = runtime.budget.scale_for(cam)
        assert curve.max_share == pytest.approx(rate * flops / (float(cfg.runtime.accelerator_gflops) * 1e9))
        assert 0 < curve.max_share < 0.25  # far less than the original GPU's 0.25 for this small model
    # a fixed number keeps the original's model for every camera
    runtime, _ = build_runtime(make_cfg("experiment=tiny", "window.forgetting=false",
                                        "cluster.inference.max_share=0.25"))
    runtime.setup(None)
    assert all(runtime.budget.scale_for(cam).max_share == 0.25 for cam in runtime.streams)
