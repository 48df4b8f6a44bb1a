"""Build and validate a Budget (accelerators, window, quantum, curves) from plain values or a config."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ekya.errors import EkyaError
from ekya.plans.curves import (
    DEFAULT_CAPACITY,
    DEFAULT_MAX_INFERENCE_SHARE,
    THROUGHPUT_KINDS,
    InferenceCurve,
    TrainThroughput,
)
from ekya.plans.types import Budget


def check_budget(budget: Budget) -> Budget:
    """Raise EkyaError if the budget cannot be scheduled; return it unchanged otherwise."""
    if not isinstance(budget.accelerators, int) or budget.accelerators < 1:
        raise EkyaError(f"cluster.accelerators must be an integer >= 1, got {budget.accelerators!r}")
    if not (budget.delta > 0 and budget.delta <= 1.0):
        raise EkyaError(f"cluster.delta (allocation quantum) must be in (0, 1], got {budget.delta!r}")
    if not (budget.window > 0 and math.isfinite(budget.window)):
        raise EkyaError(f"window length must be a positive number of seconds, got {budget.window!r}")
    if not (budget.label_delay >= 0 and math.isfinite(budget.label_delay)):
        raise EkyaError(f"label_delay must be >= 0 seconds, got {budget.label_delay!r}")
    return budget


def make_budget(
    accelerators: int,
    window: float,
    delta: float = 0.1,
    label_delay: float = 0.0,
    throughput: str | Mapping[str, Any] = "mps",
    inference: InferenceCurve | Mapping[str, Any] | None = None,
    stream_inference: Mapping[str, InferenceCurve | Mapping[str, Any]] | None = None,
    capacity: float = DEFAULT_CAPACITY,
) -> Budget:
    """A validated Budget with the standard curves (``throughput``: 'mps', 'linear', 'original_mps' or a table).

    ``capacity``: the device's work when saturated, in lone-job units (see ``TrainThroughput``).
    ``stream_inference`` optionally gives some streams their own inference curve. ``inference.max_share:
    auto`` leaves the keep-up share to the runtime (``Budget.derive_keep_up``); the table's default stands in.
    """
    derive = isinstance(inference, Mapping) and inference.get("max_share") == "auto"
    if derive:
        assert isinstance(inference, Mapping)
        inference = {k: v for k, v in inference.items() if k != "max_share"}
    curve = _curve(inference) if inference is not None else InferenceCurve()
    own = {str(k): _curve(v) for k, v in (stream_inference or {}).items()}
    budget = Budget(
        accelerators=accelerators,
        window=float(window),
        delta=float(delta),
        label_delay=float(label_delay),
        infer_scale=curve,
        train_rate=_throughput(throughput, capacity),
        stream_scales=own,
        derive_keep_up=derive,
    )
    return check_budget(budget)


def _throughput(spec: str | Mapping[str, Any], capacity: Any = DEFAULT_CAPACITY) -> TrainThroughput:
    """A kind name or a measured lone-job table {kind, shares, seconds_per_task} (as ekya.bench calibrate writes)."""
    try:
        cap = float(capacity)
    except (TypeError, ValueError):
        raise EkyaError(f"cluster.capacity must be a number > 0 (1 = linear), got {capacity!r}") from None
    if isinstance(spec, str):
        return TrainThroughput(kind=spec, capacity=cap)
    keys = set(spec)
    if keys - {"kind", "shares", "seconds_per_task"} or not {"shares", "seconds_per_task"} <= keys:
        raise EkyaError(f"cluster.throughput: give one of {list(THROUGHPUT_KINDS)} or a table with keys shares and "
                        f"seconds_per_task (optional kind), got keys {sorted(keys)}")
    return TrainThroughput(kind=str(spec.get("kind", "mps")), shares=tuple(float(v) for v in spec["shares"]),
                           seconds_per_task=tuple(float(v) for v in spec["seconds_per_task"]), capacity=cap)


def _curve(spec: InferenceCurve | Mapping[str, Any]) -> InferenceCurve:
    if isinstance(spec, InferenceCurve):
        return spec
    known = {"subsampling", "relative_accuracy", "max_share"}
    if set(spec) - known:
        raise EkyaError(f"inference curve: unknown key(s) {sorted(set(spec) - known)}; expected {sorted(known)}")
    share = spec.get("max_share", DEFAULT_MAX_INFERENCE_SHARE)
    if isinstance(share, bool) or not isinstance(share, (int, float)):
        raise EkyaError(f"cluster.inference.max_share must be a share in (0, 1] or auto, got {share!r}")
    fields: dict[str, Any] = {k: (tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in spec.items()}
    return InferenceCurve(**fields)


def budget_from_config(cluster: Mapping[str, Any], window: float, label_delay: float = 0.0) -> Budget:
    """A Budget from the ``cluster`` config group (see conf/cluster/default.yaml) plus the window."""
    known = {"accelerators", "delta", "throughput", "capacity", "inference", "stream_inference"}
    unknown = set(cluster) - known
    if unknown:
        raise EkyaError(f"cluster: unknown key(s) {sorted(unknown)}; expected {sorted(known)}")
    inference = cluster.get("inference")
    return make_budget(
        accelerators=cluster.get("accelerators", 1),
        window=window,
        delta=cluster.get("delta", 0.1),
        label_delay=label_delay,
        throughput=cluster.get("throughput", "mps"),
        capacity=cluster.get("capacity", DEFAULT_CAPACITY),
        inference=dict(inference) if inference is not None else None,
        stream_inference={k: dict(v) for k, v in (cluster.get("stream_inference") or {}).items()},
    )
