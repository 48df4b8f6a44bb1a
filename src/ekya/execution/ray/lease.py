"""A share lease: a Ray actor that only holds an accelerator share on behalf of a camera's inference process.

Import this module only after ``ekya.execution.ray.cluster.connect`` (it imports ray). It imports
nothing else, so its process starts in well under a second (no torch): a CPU inference share can
then change in place (the duty cycle of the running inference actor is reset) while Ray's
bookkeeping follows through leases, instead of starting a replacement inference process.
"""

from __future__ import annotations

import os
from typing import Any

import ray


@ray.remote(num_cpus=0, max_restarts=0)
class ShareLease:
    """Holds the Ray resource it was created with until it is killed; does no work."""

    def ready(self) -> dict[str, Any]:
        """Where the lease runs (process id and Ray node id)."""
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}
