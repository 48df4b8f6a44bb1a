"""Turn planned shares into literal Ray requests, and refuse any booking that would over-commit an accelerator.

"0.3 of accelerator 0 on node A" becomes ``resources={"ekya_A_acc0": 0.3}, num_cpus=0``. Ray's own
bookkeeping would queue an actor that does not fit (and a plan would then wait forever), so the
controller keeps a ledger of what it booked and fails at once, naming the accelerator and the jobs
on it, before asking Ray.
"""

from __future__ import annotations

from typing import Any

from ekya.errors import EkyaError
from ekya.execution.ray.cluster import Accelerator
from ekya.execution.ray.share import check_share

#: Ray's resource precision (fractions below it are refused by Ray itself)
RAY_PRECISION = 1e-4


def ray_quantity(share: float) -> float:
    """A share rounded down to Ray's 0.0001 precision, so the bookings on one accelerator never exceed 1.0."""
    return int(check_share(share) / RAY_PRECISION + 1e-6) * RAY_PRECISION


class Ledger:
    """The shares booked on every accelerator, by job name (e.g. ``cam1/infer``)."""

    def __init__(self, accelerators: list[Accelerator]) -> None:
        self.accelerators = list(accelerators)
        self.booked: dict[int, dict[str, float]] = {a.index: {} for a in self.accelerators}

    def accelerator(self, index: int | None, job: str) -> Accelerator:
        """The accelerator a plan names for a job (None = the only one)."""
        if index is None:
            if len(self.accelerators) > 1:
                raise EkyaError(f"job {job}: the plan places it on no accelerator of the {len(self.accelerators)}")
            index = 0
        if not 0 <= int(index) < len(self.accelerators):
            raise EkyaError(f"job {job}: the plan places it on accelerator {index}, but runtime.nodes has "
                            f"{len(self.accelerators)} (0..{len(self.accelerators) - 1})")
        return self.accelerators[int(index)]

    def load(self, index: int) -> float:
        """The share booked on one accelerator."""
        return sum(self.booked[index].values())

    def book(self, acc: Accelerator, job: str, share: float) -> dict[str, Any]:
        """Book ``share`` of ``acc`` for ``job`` and return its Ray actor options; EkyaError if it does not fit."""
        q = ray_quantity(share)
        held = self.booked[acc.index]
        if self.load(acc.index) - held.get(job, 0.0) + q > 1.0 + 1e-9:
            jobs = ", ".join(f"{j} {s:g}" for j, s in sorted(held.items())) or "nothing"
            raise EkyaError(f"cannot place {job} at share {share:g} on accelerator {acc.index} ({acc.resource}): "
                            f"it already holds {jobs}; a plan's shares on one accelerator must add up to at most 1")
        held[job] = q
        return {"num_cpus": 0, "resources": {acc.resource: q}}

    def release(self, acc: Accelerator, job: str) -> None:
        """Free what ``job`` booked on ``acc`` (nothing if it booked nothing)."""
        self.booked[acc.index].pop(job, None)
