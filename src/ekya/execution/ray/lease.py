"""Share leases: Ray placement groups of one bundle that hold accelerator shares for cameras' inference.

Reserving a bundle ``{"ekya_<node>_acc<i>": x}`` is bookkeeping in Ray's control plane: no process
starts, so it is granted in milliseconds, and the bundle can only be placed on the node that has
that accelerator. A CPU inference share then changes in place (the running inference actor's duty
cycle is reset) while Ray's booking follows through leases, instead of starting a replacement
inference process; removing the group frees the share at once.

``ShareLease`` is the Ray side (ray is imported when one is asked for, after
``cluster.connect``); ``Leases`` is the controller's side: every lease booked in the ledger, by job
name, so that closing the runtime frees each one whatever interrupted the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ekya.execution.ray.cluster import Accelerator
from ekya.execution.ray.placement import Ledger

log = logging.getLogger("ekya.ray")


@dataclass
class ShareLease:
    """One bundle reserving ``quantity`` of one accelerator's custom resource; ends when ``end`` removes it."""

    group: Any
    resource: str
    quantity: float

    @classmethod
    def request(cls, resource: str, quantity: float) -> ShareLease:
        """Ask Ray for the share (granted once the accelerator has the room; see ``granted``)."""
        from ray.util.placement_group import placement_group

        return cls(placement_group([{resource: float(quantity)}], strategy="STRICT_PACK"), resource, float(quantity))

    def granted(self, timeout: float = 0.0) -> bool:
        """Whether Ray has reserved the share (waiting at most ``timeout`` seconds)."""
        return bool(self.group.wait(timeout))

    def where(self) -> dict[str, Any]:
        """Where the share is held: the Ray node id (no process holds it)."""
        from ray.util.placement_group import placement_group_table

        return {"pid": None, "node": placement_group_table(self.group)["bundles_to_node_id"].get(0)}

    def end(self) -> None:
        """Give the share back."""
        import ray
        from ray.util.placement_group import remove_placement_group

        try:
            remove_placement_group(self.group)
        except ray.exceptions.RaySystemError as e:
            # its node's control plane is gone with the node, and so is the reservation: nothing is left to free
            log.debug("lease of %g of %s: its node is gone (%s)", self.quantity, self.resource, type(e).__name__)


@dataclass
class Lease:
    """A share lease the controller holds: it books the part of a camera's inference share above its actor's own."""

    handle: ShareLease
    job: str
    share: float


class Leases:
    """Every lease not yet ended, by job name, each booked in the controller's ledger before Ray is asked."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.held: dict[str, Lease] = {}

    def request(self, job: str, acc: Accelerator, share: float) -> Lease:
        """Book ``share`` of ``acc`` for ``job`` in the ledger (refusing an over-commitment), then ask Ray for it."""
        opts = self.ledger.book(acc, job, share)
        lease = Lease(ShareLease.request(acc.resource, opts["resources"][acc.resource]), job, share)
        self.held[job] = lease
        return lease

    def end(self, acc: Accelerator, lease: Lease) -> None:
        """End a lease (it runs no work) and free its booking."""
        lease.handle.end()
        self.held.pop(lease.job, None)
        self.ledger.release(acc, lease.job)

    def end_all(self) -> None:
        """End every lease still held (those a change in flight had asked for, when the run stops)."""
        for lease in list(self.held.values()):
            lease.handle.end()
        self.held = {}
