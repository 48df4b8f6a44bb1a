"""The retraining configuration space (conf/configspace/*.yaml) as named RetrainConfigs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ekya.errors import EkyaError
from ekya.profiles.types import RetrainConfig


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
