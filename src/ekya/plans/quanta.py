"""Allocation quanta: how shares of an accelerator are counted in whole steps of the quantum delta."""

from __future__ import annotations

import math

from ekya.plans.types import Budget

# Shares are compared with this tolerance: 0.1 + 0.2 must count as 0.3.
EPS = 1e-9


def units_per_accelerator(delta: float) -> int:
    """How many quanta of size delta fit on one accelerator (a job never exceeds one)."""
    return int(math.floor(1.0 / delta + 1e-9))


def total_units(budget: Budget) -> int:
    """Quanta available in the whole cluster."""
    return budget.accelerators * units_per_accelerator(budget.delta)


def even_units(total: int, n: int, cap: int) -> list[int]:
    """Split ``total`` quanta over ``n`` jobs as evenly as possible (earlier jobs get the remainder), each <= cap.

    This is the largest-remainder method for equal quotas: every job's quota total / n has the same
    remainder, so the ``total mod n`` spare quanta go one each to the first jobs in order, which keeps
    the split deterministic.
    """
    if n <= 0:
        return []
    base, extra = divmod(max(total, 0), n)
    return [min(cap, base + (1 if k < extra else 0)) for k in range(n)]


def round_half_up(x: float) -> int:
    """The integer nearest to x >= 0, halves rounded up (1.5 -> 2, 2.5 -> 3, unlike Python's round)."""
    return int(math.floor(x + 0.5 + EPS))


def to_units(share: float, delta: float) -> int:
    """The number of quanta in a share that is a multiple of delta (rounded to the nearest quantum)."""
    return int(round(share / delta))
