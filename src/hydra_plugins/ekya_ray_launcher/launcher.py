"""The ``ekya_ray`` Hydra launcher: each cell of a batch is a Ray task booking ``num_cpus`` and ``resources``.

Ray is imported on the first launch, never when Hydra scans its plugins. With ``address: null`` the
launcher starts a Ray of its own on loopback, locked down as the ray runtime's is
(``ekya.execution.ray.cluster``), and stops it when the process ends, so a sweep of several batches
starts Ray once.
A cell whose task fails or whose worker dies comes back FAILED; the other cells keep running.
Each cell runs with the driver's process policies (``ekya.process.env_policies``) in its environment.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


class EkyaRayLauncher(Launcher):
    """Run each cell of a Hydra sweep batch as a Ray task on a local loopback Ray or a joined cluster."""

    def __init__(self, address: str | None = None, num_cpus: float = 1.0,
                 resources: Mapping[str, float] | None = None, local_cpus: int | None = None,
                 object_store_mb: int = 100, connect_timeout_s: float = 30.0) -> None:
        from ekya.errors import EkyaError
        from ekya.waits import timeout_of

        self.address = None if address in (None, "", "null", "None") else str(address)
        try:
            self.connect_timeout = timeout_of("hydra.launcher.connect_timeout_s", connect_timeout_s)
        except EkyaError as e:
            _user_error(str(e))
        self.num_cpus = _amount("num_cpus", num_cpus)
        plain = OmegaConf.to_container(resources) if OmegaConf.is_config(resources) else dict(resources or {})
        self.resources = {str(k): _amount(f"resources.{k}", v) for k, v in plain.items()}
        if local_cpus is not None and (isinstance(local_cpus, bool) or int(local_cpus) != local_cpus or local_cpus < 1):
            _user_error(f"hydra.launcher.local_cpus={local_cpus!r}: must be an integer >= 1, or null for every core")
        self.local_cpus = None if local_cpus is None else int(local_cpus)
        self.object_store_mb = int(object_store_mb)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """Keep what every cell needs: Hydra's context, the task function and the sweep's config."""
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Submit every cell of the batch as a Ray task, then collect their JobReturns in job order."""
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        ray = self._connect()
        self._check_feasible(ray)
        from ekya.process import env_policies
        from hydra_plugins.ekya_ray_launcher._cell import failed, run_cell

        remote = ray.remote(run_cell).options(num_cpus=self.num_cpus, resources=self.resources or None,
                                              # Ray retries a task whose worker died 3 times by default: a
                                              # cell half played is not one to start again unasked
                                              max_retries=0, name="ekya_cell")
        # workers of a joined cluster have ray start's environment, not the driver's
        env = env_policies()
        singleton_state = Singleton.get_state()
        cwd = os.getcwd()
        configs, refs = [], []
        for offset, overrides in enumerate(job_overrides):
            idx = initial_job_idx + offset
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.num = idx
            configs.append(sweep_config)
            refs.append(remote.remote(self.hydra_context, sweep_config, self.task_function, singleton_state, cwd, env))
            log.info("#%d : %s  (Ray task %s)", idx, " ".join(filter_overrides(overrides)), refs[-1].task_id().hex())
        results: list[JobReturn] = []
        try:
            for sweep_config, ref in zip(configs, refs):
                try:
                    results.append(ray.get(ref))
                except ray.exceptions.RayError as e:  # the cell's worker died, or Ray lost the task
                    results.append(failed(sweep_config, e))
        except BaseException:
            # Ctrl-C in the driver: the cells still queued or running are cancelled, not left behind
            for ref in refs[len(results):]:
                ray.cancel(ref, force=True)
            raise
        return results

    def _check_feasible(self, ray: Any) -> None:
        """Fail fast when no node of the cluster could ever run a cell (Ray would wait for one forever)."""
        demand = {"CPU": self.num_cpus, **self.resources}
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        if any(all(float(have.get(k, 0.0)) >= v for k, v in demand.items()) for have in nodes):
            return
        short = next(k for k, v in demand.items() if not any(float(h.get(k, 0.0)) >= v for h in nodes))
        key = "num_cpus" if short == "CPU" else f"resources.{short}"
        most = max((float(h.get(short, 0.0)) for h in nodes), default=0.0)
        _user_error(f"hydra.launcher.{key}={demand[short]:g}: no node of the Ray cluster has that much {short!r} "
                    f"(the most on one node is {most:g}); lower it or start a node that declares it")

    def _connect(self) -> Any:
        """Ray, initialised: the loopback Ray this launcher starts, the cluster at ``address``, or one already up.

        Started or joined by ``ekya.execution.ray.cluster`` (the runtime's own start-up, so the two stay
        locked down alike): a cluster at ``address`` that does not answer within ``connect_timeout_s``
        ends the sweep in one line, before Ray is imported.
        """
        from ekya.errors import EkyaError
        from ekya.execution.ray import cluster

        if cluster.running():
            return sys.modules["ray"]
        try:
            if self.address is None:
                cluster.init_local(num_cpus=self.local_cpus, object_store_mb=self.object_store_mb, driver_logs=True,
                                   key="hydra.launcher.address")
            else:
                cluster.join(self.address, key="hydra.launcher.address", timeout_s=self.connect_timeout,
                             driver_logs=True, hint=", or use address=null for a local Ray")
        except EkyaError as e:
            _user_error(str(e))
        import ray

        if self.address is None:
            atexit.register(ray.shutdown)
        return ray


def _amount(key: str, value: Any) -> float:
    """A resource quantity from the config, checked: a number >= 0."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = -1.0
    if isinstance(value, bool) or out < 0:
        _user_error(f"hydra.launcher.{key}={value!r}: must be a number >= 0")
    return out


def _user_error(message: str) -> NoReturn:
    """End the sweep on a user error with ekya's one line and exit status 2.

    An exception would not do: Hydra reports whatever a launcher raises as a traceback with status 1.
    """
    print(f"ekya: error: {message}", file=sys.stderr)
    sys.exit(2)
