"""What one Ray task does: play one sweep cell with Hydra's own ``run_job`` and hand back its JobReturn.

Kept apart from the launcher (and named with ``_`` so Hydra's plugin scan never imports it) because
it runs inside Ray workers.
"""

from __future__ import annotations

import os
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict


def run_cell(hydra_context: HydraContext, sweep_config: DictConfig, task_function: TaskFunction,
             singleton_state: dict[Any, Any], cwd: str, env: dict[str, str]) -> JobReturn:
    """Run the cell in the driver's working directory with the driver's ``env`` policies; failures come back FAILED."""
    # before the cell loads torch: a worker of this sweep loaded it, if at all, in an earlier cell,
    # which had set the same values first
    os.environ.update(env)
    import ray

    setup_globals()
    Singleton.set_state(singleton_state)
    with open_dict(sweep_config):
        # Hydra's job id is the scheduler's id for the job: here the Ray task's
        sweep_config.hydra.job.id = ray.get_runtime_context().get_task_id()
    HydraConfig.instance().set_config(sweep_config)
    if not os.path.isdir(cwd):
        node = ray.get_runtime_context().get_node_id()
        return failed(sweep_config, FileNotFoundError(
            f"the sweep's working directory {cwd} does not exist on Ray node {node}: hydra/launcher=ekya_ray "
            "ships no files, so every node must share the driver's filesystem at the same paths"))
    before = os.getcwd()
    # relative paths of the config (hydra.sweep.dir, output_root) mean the same folder as in the driver
    os.chdir(cwd)
    try:
        return run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    except BaseException as e:  # noqa: BLE001 - sys.exit() or a callback's error ends this cell only
        return failed(sweep_config, e)
    finally:
        os.chdir(before)


def failed(sweep_config: DictConfig, error: BaseException) -> JobReturn:
    """The JobReturn of a cell that did not finish: the sweeper sees FAILED and, when it asks, the error."""
    overrides = list(sweep_config.hydra.overrides.task)
    return JobReturn(overrides=overrides, working_dir=os.getcwd(), task_name=str(sweep_config.hydra.job.name),
                     status=JobStatus.FAILED, _return_value=error)
