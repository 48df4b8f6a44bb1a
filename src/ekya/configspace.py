"""The retraining configuration space (conf/configspace/*.yaml): named RetrainConfigs and the names of cached models.

Vocabulary shared by learners (which read a config's params), profiles, plans (which know a config by its
name) and execution. Torch-free, and imports nothing of ekya but its error type, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ekya.errors import EkyaError

#: configs whose name starts with this are cached models to switch to, not retraining configs
CACHE_PREFIX = "cache:"


def is_cached(config: str | None) -> bool:
    """Whether a config name stands for a cached model rather than a retraining config."""
    return config is not None and config.startswith(CACHE_PREFIX)


@dataclass(frozen=True)
class RetrainConfig:
    """One point of the retraining configuration space (gamma in the paper).

    ``params`` holds the learner's knobs: backbone, frozen (bool), hidden, epochs, data_fraction,
    batch_size, lr. The scheduler treats a config as an opaque name; only learners read params.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


def load_configspace(space: Mapping[str, Any]) -> dict[str, RetrainConfig]:
    """Named configs from a ``configs: [{name: ..., <learner params>}, ...]`` mapping, in file order."""
    entries = space.get("configs")
    if not entries:
        raise EkyaError("configspace.configs is empty; list at least one retraining configuration")
    out: dict[str, RetrainConfig] = {}
    for i, entry in enumerate(entries):
        params = dict(entry)
        name = params.pop("name", None)
        if not name:
            raise EkyaError(f"configspace.configs[{i}] has no 'name'; give every configuration a unique name")
        if name in out:
            raise EkyaError(f"configspace.configs[{i}]: name {name!r} is used twice; names must be unique")
        out[str(name)] = RetrainConfig(str(name), params)
    default = space.get("default")
    if default is not None and default not in out:
        raise EkyaError(f"configspace.default={default!r} is not one of the configs {list(out)}")
    return out


def check_config_name(name: str | None, space: Mapping[str, RetrainConfig], key: str) -> None:
    """Raise EkyaError if a config named by ``key`` is not in the space."""
    if name is not None and name not in space:
        raise EkyaError(f"{key}={name!r} is not in the configuration space; choose one of {list(space)}")
