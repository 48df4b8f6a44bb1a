"""One device, one rate: each camera's inference keep-up share from its model's FLOPs and its sample rate.

A share s of an emulated accelerator computes ``s * runtime.accelerator_gflops`` GFLOP/s, for
training and inference alike. A camera's inference keeps up with its stream when its share covers
the forward passes the stream asks for: ``samples per second * forward FLOPs per sample / rate``.
That is the inference curve's ``max_share`` (below it the stream subsamples and accuracy follows
the measured table, ``ekya.plans.curves.InferenceCurve``). ``cluster.inference.max_share: auto``
derives it per camera here; a number keeps the number for every camera.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ekya.errors import EkyaError
from ekya.plans.curves import InferenceCurve
from ekya.plans.types import Budget


def sample_rate(samples: pd.DataFrame, seconds: float, windows: int) -> float:
    """Samples per second of video over the run's windows (bootstrap included): what inference must process."""
    span = float(seconds) * int(windows)
    if span <= 0:
        raise EkyaError(f"a camera's sample rate needs a positive span of video, got {span} s")
    ts = samples["timestamp"].to_numpy(dtype=float)
    return float(np.count_nonzero((ts >= 0) & (ts < span))) / span


def keep_up_share(rate: float, forward_flops: float, gflops: float) -> float:
    """The share of one accelerator at ``gflops`` that runs ``rate`` forward passes of ``forward_flops`` a second."""
    if not gflops > 0:
        raise EkyaError(f"runtime.accelerator_gflops must be > 0, got {gflops}")
    return float(rate) * float(forward_flops) / (float(gflops) * 1e9)


def with_keep_up(budget: Budget, shares: Mapping[str, float]) -> Budget:
    """The budget with each camera's inference curve keeping up at its derived share (the table unchanged).

    A camera with its own curve in ``cluster.stream_inference`` keeps it. A share of 0 (a camera with
    no samples) would make every allotment keep up; it is refused rather than silently allowed.
    """
    if not budget.derive_keep_up:
        return budget
    base = budget.infer_scale
    if not isinstance(base, InferenceCurve):
        raise EkyaError("cluster.inference.max_share=auto needs the standard inference curve")
    scales = dict(budget.stream_scales)
    for cam, share in shares.items():
        if cam in scales:
            continue
        if not share > 0:
            raise EkyaError(f"camera {cam!r}: no samples in the run's windows, so its keep-up share cannot be "
                            "derived; set cluster.inference.max_share to a number")
        scales[cam] = dataclasses.replace(base, max_share=float(share))
    return dataclasses.replace(budget, stream_scales=scales)
