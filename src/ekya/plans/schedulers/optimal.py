"""optimal: the exact optimum over the thief's plan space, to measure the thief's gap.

What it is optimal over, precisely: per stream, a retraining config (or none) and static shares
(I, R) that are multiples of Delta with I, R <= 1 accelerator, such that all jobs pack onto the
accelerators (a stream whose jobs fit on one accelerator keeps them together, packing.py); the
objective is the mean predicted window accuracy of accuracy.py, i.e. static shares from the window
start plus the default completion rule (a finished job's share goes to its stream's inference).
It is NOT optimal over schedules that re-plan at completions (the thief's on_completion may do
better than its own plan when played), nor over shares finer than Delta.

Method: the objective decomposes per stream, so (1) the value tables give each stream's best value
for every (i, r) quanta pair; (2) a knapsack dynamic programme over streams x total quanta
(capacity G / Delta) finds the best total ignoring which accelerator each job sits on; (3) if that
optimum packs (exhaustive check on small plans), it is the optimum over packable plans too, since
those are a subset. Otherwise (4) an integer programme with explicit device assignment is solved
with scipy's HiGHS (``scipy.optimize.milp``). Meant for small instances.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ekya.errors import EkyaError
from ekya.plans.packing import exact_fit, job_items
from ekya.plans.quanta import total_units
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.plan_building import check_inputs, plan_from_tables
from ekya.plans.types import Budget, Plan, StreamPlan
from ekya.plans.value_tables import ValueTables, build_tables
from ekya.profiles.types import StreamProfile


def knapsack(tables: ValueTables, capacity: int) -> np.ndarray:
    """Best (i, r) quanta per stream with sum of all quanta <= capacity (per-device packing ignored)."""
    V, U = tables.values, tables.units
    S = V.shape[0]
    # Per stream and total k = i + r: the best value and its (i, r).
    best = np.full((S, 2 * U + 1), -np.inf)
    arg = np.zeros((S, 2 * U + 1, 2), dtype=np.int64)
    for i in range(U + 1):
        for r in range(U + 1):
            better = V[:, i, r] > best[:, i + r]
            best[better, i + r] = V[better, i, r]
            arg[better, i + r] = (i, r)
    dp = np.full(capacity + 1, -np.inf)
    dp[0] = 0.0
    take = np.zeros((S, capacity + 1), dtype=np.int64)
    for s in range(S):
        new = np.full(capacity + 1, -np.inf)
        for k in range(min(2 * U, capacity) + 1):
            cand = np.full(capacity + 1, -np.inf)
            cand[k:] = dp[: capacity + 1 - k] + best[s, k]
            better = cand > new + 1e-15
            new[better] = cand[better]
            take[s, better] = k
        dp = new
    k = int(np.argmax(dp))
    units = np.zeros((S, 2), dtype=np.int64)
    for s in range(S - 1, -1, -1):
        j = int(take[s, k])
        units[s] = arg[s, j]
        k -= j
    return units


def milp_with_devices(tables: ValueTables, accelerators: int, time_limit: float = 60.0) -> np.ndarray:
    """Exact optimum with explicit device placement (HiGHS integer programme)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import lil_matrix

    V, U = tables.values, tables.units
    S, G = V.shape[0], accelerators
    opts: list[tuple[int, int, int, int, int]] = []  # (stream, i, r, device of i, device of r)
    for s in range(S):
        for i in range(U + 1):
            for r in range(U + 1):
                if i + r == 0:
                    opts.append((s, 0, 0, -1, -1))
                elif i == 0 or r == 0 or i + r <= U:  # one item: a lone job or a co-located bundle
                    opts += [(s, i, r, g if i else -1, g if r else -1) for g in range(G)]
                else:
                    opts += [(s, i, r, gi, gt) for gi in range(G) for gt in range(G) if gi != gt]
    n = len(opts)
    c = -np.array([V[s, i, r] for s, i, r, _, _ in opts])
    # rows: one choice per stream; load of each device <= U; loads ordered (breaks device symmetry)
    A = lil_matrix((S + 2 * G - 1, n))
    for k, (s, i, r, gi, gt) in enumerate(opts):
        A[s, k] = 1
        for g, q in ((gi, i), (gt, r)):
            if g >= 0:
                A[S + g, k] += q
                if g < G - 1:
                    A[S + G + g, k] += q
                if g > 0:
                    A[S + G + g - 1, k] -= q
    lo = np.r_[np.ones(S), np.zeros(G), np.zeros(G - 1)]
    hi = np.r_[np.ones(S), np.full(G, U), np.full(G - 1, np.inf)]
    res = milp(c, constraints=LinearConstraint(A.tocsr(), lo, hi), integrality=np.ones(n), bounds=Bounds(0, 1),
               options={"time_limit": time_limit})
    if res.status != 0 or res.x is None:
        raise EkyaError(f"optimal: the integer programme did not prove optimality within {time_limit:g} s "
                        f"({res.message}); the optimal scheduler is meant for small instances")
    units = np.zeros((S, 2), dtype=np.int64)
    for k in np.flatnonzero(res.x > 0.5).tolist():
        s, i, r, _, _ = opts[k]
        units[s] = (i, r)
    return units


class OptimalScheduler(Scheduler):
    """Exact optimum of the static plan space (see the module docstring); for small instances."""

    name = "optimal"
    needs_profiles = True

    def __init__(self, a_min: float = 0.4, time_limit: float = 60.0) -> None:
        if not 0.0 <= a_min <= 1.0:
            raise EkyaError(f"scheduler.a_min must be in [0, 1], got {a_min!r}")
        if not time_limit > 0:
            raise EkyaError(f"scheduler.time_limit must be > 0 seconds, got {time_limit!r}")
        self.a_min = float(a_min)
        self.time_limit = float(time_limit)

    def plan(self, profiles: Sequence[StreamProfile], budget: Budget) -> Plan:
        """The best packable static plan."""
        check_inputs(profiles, budget)
        profiles = list(profiles)
        if not profiles:
            return Plan(())
        tables = build_tables(profiles, budget, self.a_min)
        units = self.solve(tables, budget)
        return plan_from_tables(profiles, tables, units, budget)

    def solve(self, tables: ValueTables, budget: Budget) -> np.ndarray:
        """Optimal quanta per (stream, kind)."""
        units = knapsack(tables, total_units(budget))
        d = budget.delta
        sizes = [it[0] for it in job_items([StreamPlan(str(s), None, i * d, r * d) for s, (i, r) in enumerate(units)])]
        try:
            fits = exact_fit(sizes, budget.accelerators) is not None
        except RuntimeError:
            fits = False
        return units if fits else milp_with_devices(tables, budget.accelerators, self.time_limit)
