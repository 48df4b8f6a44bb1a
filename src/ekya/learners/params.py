"""A RetrainConfig's params for the fine-tuning learner: completed with the learner's defaults and checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ekya.configspace import RetrainConfig
from ekya.errors import EkyaError
from ekya.learners.backbones import BACKBONES

#: The knobs a RetrainConfig may set; a missing one falls back to the learner's default.
PARAM_KEYS = ("backbone", "frozen", "hidden", "epochs", "data_fraction", "batch_size", "lr", "optimizer",
              "momentum", "weight_decay")


@dataclass(frozen=True)
class JobParams:
    """A RetrainConfig's params, completed with the learner's defaults and checked."""

    backbone: str
    frozen: bool
    hidden: int
    epochs: int
    data_fraction: float
    batch_size: int
    lr: float
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0


_TYPES: dict[str, type] = {"backbone": str, "frozen": bool, "hidden": int, "epochs": int, "data_fraction": float,
                           "batch_size": int, "lr": float, "optimizer": str, "momentum": float, "weight_decay": float}


def job_params(config: RetrainConfig, defaults: Mapping[str, Any]) -> JobParams:
    """The config's params completed with ``defaults``; EkyaError names the config and bad key."""
    unknown = sorted(set(config.params) - set(PARAM_KEYS))
    if unknown:
        raise EkyaError(f"configspace config {config.name!r}: unknown key(s) {unknown}; "
                        f"a config may set {list(PARAM_KEYS)}")
    p = {**defaults, **dict(config.params)}
    values: dict[str, Any] = {}
    for key, cast in _TYPES.items():
        if key not in p:
            raise EkyaError(f"configspace config {config.name!r}: {key} is not set and the learner has no default "
                            "for it; set it in the config")
        try:
            values[key] = cast(p[key])
        except (TypeError, ValueError):
            want = "an integer" if cast is int else "a number"
            raise EkyaError(f"configspace config {config.name!r}: {key}={p[key]!r} must be {want}") from None
    job = JobParams(**values)
    checks = [
        (job.backbone in BACKBONES, "backbone", f"one of {sorted(BACKBONES)}"),
        (job.hidden >= 1, "hidden", ">= 1"), (job.epochs >= 1, "epochs", ">= 1"),
        (0 < job.data_fraction <= 1, "data_fraction", "in (0, 1]"), (job.batch_size >= 1, "batch_size", ">= 1"),
        (job.lr > 0, "lr", "> 0"), (job.optimizer in ("adam", "sgd"), "optimizer", "'adam' or 'sgd'"),
    ]
    for ok, key, want in checks:
        if not ok:
            raise EkyaError(f"configspace config {config.name!r}: {key}={p[key]!r} must be {want}")
    return job
