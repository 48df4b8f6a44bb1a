"""Where ekya's Hydra configs live (inside the package, so installed copies find them) and composing them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

#: modules of a part's ``_target_`` renamed since runs may have saved or tracked their config: old -> new.
#: Resuming maps a saved config's names forward; a sweep cell's fingerprint uses the old ones, so cells
#: tracked before a rename still find their FINISHED twins.
RENAMED_MODULES = {"ekya.learners.learner": "ekya.learners.finetune",
                   "ekya.plans.schedulers.replay": "ekya.plans.schedulers.schedule_replay"}

def renamed_targets(node: Any, modules: Mapping[str, str]) -> Any:
    """A plain config (dicts and lists) with every ``_target_`` whose module is a key of ``modules`` renamed."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "_target_" and isinstance(value, str):
                module, _, name = value.rpartition(".")
                out[key] = f"{modules.get(module, module)}.{name}"
            else:
                out[key] = renamed_targets(value, modules)
        return out
    return [renamed_targets(v, modules) for v in node] if isinstance(node, list) else node


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


def _override_text(value: object) -> str:
    """A config value as a Hydra override writes it (true, not True)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def group_overrides(group: str, option: str) -> tuple[str, ...]:
    """The overrides conf/GROUP/OPTION.yaml (a ``_global_`` file) stands for: its group choices, then its keys.

    ``cell/noisy_teacher`` -> ("labeler=noisy", "labeler.accuracy=0.85"), in the file's order: what
    ``+GROUP=OPTION`` does to a run, written as the overrides a benchmark passes one by one.
    """
    from omegaconf import OmegaConf

    from ekya.errors import EkyaError

    path = CONF_DIR / group / f"{option}.yaml"
    if not path.is_file():
        options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        raise EkyaError(f"{group}={option}: no {path.name} in {CONF_DIR / group}; choose from {', '.join(options)}")
    node = OmegaConf.to_container(OmegaConf.load(path)) or {}
    out = []
    for entry in node.pop("defaults", []):
        for key, choice in (entry.items() if isinstance(entry, dict) else ()):
            out.append(f"{key.removeprefix('override').strip().lstrip('/')}={choice}")

    def leaves(d: dict, prefix: str = "") -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                leaves(v, f"{prefix}{k}.")
            else:
                out.append(f"{prefix}{k}={_override_text(v)}")

    leaves(node)
    return tuple(out)


def sweep_values(experiment: str, key: str) -> list[str]:
    """The values conf/experiment/EXPERIMENT.yaml sweeps ``key`` over (its hydra.sweeper.params), in order."""
    from omegaconf import OmegaConf

    params = OmegaConf.load(CONF_DIR / "experiment" / f"{experiment}.yaml").hydra.sweeper.params
    return [v.strip() for v in str(params[key]).split(",")]
