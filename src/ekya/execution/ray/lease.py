"""A share lease: a Ray placement group of one bundle that holds an accelerator share for a camera's inference.

Import this module only after ``ekya.execution.ray.cluster.connect`` (it imports ray). Reserving a
bundle ``{"ekya_<node>_acc<i>": x}`` is bookkeeping in Ray's control plane: no process starts, so
it is granted in milliseconds, and the bundle can only be placed on the node that has that
accelerator. A CPU inference share then changes in place (the running inference actor's duty
cycle is reset) while Ray's booking follows through leases, instead of starting a replacement
inference process; removing the group frees the share at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ray
from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group


@dataclass
class ShareLease:
    """One bundle reserving ``quantity`` of one accelerator's custom resource; ends when ``end`` removes it."""

    group: Any
    resource: str
    quantity: float

    @classmethod
    def request(cls, resource: str, quantity: float) -> ShareLease:
        """Ask Ray for the share (granted once the accelerator has the room; see ``granted``)."""
        return cls(placement_group([{resource: float(quantity)}], strategy="STRICT_PACK"), resource, float(quantity))

    def granted(self, timeout: float = 0.0) -> bool:
        """Whether Ray has reserved the share (waiting at most ``timeout`` seconds)."""
        return bool(self.group.wait(timeout))

    def where(self) -> dict[str, Any]:
        """Where the share is held: the Ray node id (no process holds it)."""
        return {"pid": None, "node": placement_group_table(self.group)["bundles_to_node_id"].get(0)}

    def end(self) -> None:
        """Give the share back."""
        try:
            remove_placement_group(self.group)
        except ray.exceptions.RaySystemError:
            pass  # its node's control plane is gone with the node: so is the reservation
