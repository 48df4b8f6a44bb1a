"""Ray tests: one locked-down local Ray per module (loopback, no dashboard, no usage stats, no token)."""

from __future__ import annotations

from ekya.execution.ray.cluster import lock_down

lock_down(local=True)  # before anything imports ray

import pytest  # noqa: E402

ACC = "ekya_local_acc0"


@pytest.fixture(scope="module")
def local_ray():
    """A single-node Ray on loopback with one logical accelerator, shut down after the module."""
    import ray

    ray.init(address="local", num_cpus=2, resources={ACC: 1.0}, include_dashboard=False,
             object_store_memory=200 * 2 ** 20,
             log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
