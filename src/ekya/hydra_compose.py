"""Where ekya's Hydra configs live (inside the package, so installed copies find them) and composing them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

#: The package's config directory: ``config.yaml`` (runs), ``prepare.yaml`` (ingest) and the groups.
CONF_DIR = Path(__file__).resolve().parent / "conf"


def compose_config(overrides: Sequence[str] = (), config_name: str | None = "config",
                   return_hydra_config: bool = False) -> DictConfig:
    """The composed config for these overrides, as ``python -m ekya OVERRIDES`` would see it.

    ``config_name="prepare"`` composes ``python -m ekya.prepare``'s config; None composes only the
    groups the overrides add (``+dataset=mp4``).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)
