"""Build and validate a Budget (accelerators, window, quantum, curves) from plain values or a config."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from ekya.errors import EkyaError
from ekya.plans.curves import (
    DEFAULT_CAPACITY,
    DEFAULT_MAX_INFERENCE_SHARE,
    THROUGHPUT_KINDS,
    InferenceCurve,
    TrainThroughput,
)
from ekya.plans.types import Budget


class WindowLength(Protocol):
    """The window length as the run's checked ``window`` settings carry it (ekya.execution.runtime.WindowSettings)."""

    @property
    def seconds(self) -> float: ...

    @property
    def label_delay(self) -> float: ...


def check_budget(budget: Budget) -> Budget:
    """Raise EkyaError if the budget cannot be scheduled; return it unchanged otherwise."""
    _check_cluster(budget.accelerators, budget.delta)
    _check_window(budget.window, budget.label_delay)
    return budget


def _check_cluster(accelerators: Any, delta: float) -> None:
    if not isinstance(accelerators, int) or accelerators < 1:
        raise EkyaError(f"cluster.accelerators must be an integer >= 1, got {accelerators!r}")
    if not (delta > 0 and delta <= 1.0):
        raise EkyaError(f"cluster.delta (allocation quantum) must be in (0, 1], got {delta!r}")


def _check_window(window: float, label_delay: float) -> None:
    if not (window > 0 and math.isfinite(window)):
        raise EkyaError(f"window length must be a positive number of seconds, got {window!r}")
    if not (label_delay >= 0 and math.isfinite(label_delay)):
        raise EkyaError(f"label_delay must be >= 0 seconds, got {label_delay!r}")


def make_budget(
    accelerators: int,
    window: float,
    delta: float,
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
    A run builds its Budget with ``budget_from_config``; this is the planning core's own entry (tests, benches).
    """
    _check_window(float(window), float(label_delay))
    return _cluster_budget(accelerators, float(window), delta, float(label_delay), throughput, inference,
                           stream_inference, capacity)


def _cluster_budget(accelerators: int, window: float, delta: float, label_delay: float,
                    throughput: str | Mapping[str, Any], inference: InferenceCurve | Mapping[str, Any] | None,
                    stream_inference: Mapping[str, InferenceCurve | Mapping[str, Any]] | None,
                    capacity: float) -> Budget:
    """The Budget over an already checked window, its cluster part checked here."""
    derive = isinstance(inference, Mapping) and inference.get("max_share") == "auto"
    if derive:
        assert isinstance(inference, Mapping)
        inference = {k: v for k, v in inference.items() if k != "max_share"}
    curve = _curve(inference) if inference is not None else InferenceCurve()
    own = {str(k): _curve(v) for k, v in (stream_inference or {}).items()}
    budget = Budget(
        accelerators=accelerators,
        window=window,
        delta=float(delta),
        label_delay=label_delay,
        infer_scale=curve,
        train_rate=_throughput(throughput, capacity),
        stream_scales=own,
        derive_keep_up=derive,
    )
    _check_cluster(budget.accelerators, budget.delta)
    return budget


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


#: the ``cluster`` keys, each defined once, in conf/cluster/default.yaml (a measured profile writes them all)
CLUSTER_KEYS = ("accelerators", "delta", "throughput", "capacity", "inference")
#: the one optional key: per-camera inference curves (none = every camera on ``inference``)
OPTIONAL_CLUSTER_KEYS = ("stream_inference",)


def budget_from_config(cluster: Mapping[str, Any], window: WindowLength) -> Budget:
    """A Budget from the ``cluster`` config group (see conf/cluster/default.yaml) over the run's window settings.

    ``window`` is the run's checked settings, the one owner of the window length: it is not checked again.
    """
    unknown = set(cluster) - {*CLUSTER_KEYS, *OPTIONAL_CLUSTER_KEYS}
    if unknown:
        raise EkyaError(f"cluster: unknown key(s) {sorted(unknown)}; expected {sorted(CLUSTER_KEYS)}")
    missing = [k for k in CLUSTER_KEYS if k not in cluster]
    if missing:
        raise EkyaError(f"cluster: missing key(s) {missing}; a cluster profile sets every key of "
                        "conf/cluster/default.yaml (start from a copy of it)")
    inference = cluster["inference"]
    return _cluster_budget(
        accelerators=cluster["accelerators"],
        window=float(window.seconds),
        delta=cluster["delta"],
        label_delay=float(window.label_delay),
        throughput=cluster["throughput"],
        capacity=cluster["capacity"],
        inference=dict(inference) if inference is not None else None,
        stream_inference={k: dict(v) for k, v in (cluster.get("stream_inference") or {}).items()},
    )
