"""Window settings for tests that build a runtime by hand: the config's window group, some keys changed."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from ekya.composition import window_settings
from ekya.execution.runtime import WindowSettings
from ekya.hydra_compose import CONF_DIR


def configured_window(**changed: Any) -> WindowSettings:
    """conf/config.yaml's ``window:`` group (the keys' one owner) with ``changed`` keys, read as a run reads it."""
    group = OmegaConf.load(CONF_DIR / "config.yaml").window
    return window_settings(OmegaConf.create({"window": {**OmegaConf.to_container(group), **changed}}))
