"""Ray tests: one locked-down local Ray per module (loopback, no dashboard, no usage stats, no token).

The Ray is per module, not per session: tests/ray/test_two_nodes.py joins a cluster of its own, and
a process holds one Ray connection at a time (``connect`` uses whichever Ray this process already runs).
"""

from __future__ import annotations

from ekya.execution.ray.cluster import init_local, lock_down

lock_down(local=True)  # before anything imports ray

from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf, open_dict  # noqa: E402

from ekya.hydra_compose import compose_config  # noqa: E402

ACC = "ekya_local_acc0"


@pytest.fixture(scope="module")
def local_ray():
    """A single-node Ray on loopback with one logical accelerator, shut down after the module."""
    import ray

    init_local(num_cpus=2, object_store_mb=200, resources={ACC: 1.0})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory, data_cache: Path,
            base_cache: Path) -> Iterator[Callable[..., DictConfig]]:
    """Compose a config as ``make_cfg`` does, for a runtime that several tests of a module share.

    The session's dataset and base-model caches; ``${hydra:...}`` resolves into a folder of the module.
    The config comes back resolved, and Hydra's global state cleared.
    """
    folder = tmp_path_factory.mktemp("module")

    def make(*overrides: str) -> DictConfig:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(folder)
            patch.setenv("EKYA_DATA", str(data_cache))
            cfg = compose_config([*overrides, f"runtime.base_cache={base_cache}",
                                  f"hydra.run.dir={folder / 'outputs'}"], return_hydra_config=True)
            HydraConfig.instance().set_config(cfg)
            with open_dict(cfg):
                del cfg["hydra"]
            OmegaConf.resolve(cfg)  # while Hydra's state and the environment above still hold
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None
        return cfg

    yield make


@pytest.fixture(scope="session")
def spares_up() -> Callable[[Any], set[int]]:
    """Wait for a runtime's spare inference processes to be up; their process ids.

    In a run without a base-model cache they start while the base models train; with the cache the
    window's own actors would start beside them, twice as many processes starting at once.
    """

    def wait(rt: Any) -> set[int]:
        import ray

        return {ray.get(spare.ready)["pid"] for pool in rt.fleet.spares.values() for spare in pool}

    return wait
