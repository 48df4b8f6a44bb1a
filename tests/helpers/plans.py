"""Builders for the scheduling-core tests: tiny stream profiles and a brute-force optimum."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from ekya.plans.accuracy import window_accuracy
from ekya.plans.packing import packable
from ekya.plans.quanta import units_per_accelerator
from ekya.plans.types import Budget, StreamPlan
from ekya.profiles.types import ConfigProfile, StreamProfile


def stream(name: str, a0: float, *configs: tuple[str, float, float]) -> StreamProfile:
    """A StreamProfile from (config, accuracy, cost) triples."""
    return StreamProfile(name, a0, tuple(ConfigProfile(c, a, k) for c, a, k in configs))


def _best_per_quanta(p: StreamProfile, budget: Budget) -> list[tuple[float, int, int, str | None]]:
    """The stream's best (value, i, r, config) for every (i, r) quanta pair, config None = no retraining."""
    U, d = units_per_accelerator(budget.delta), budget.delta
    top: dict[tuple[int, int], tuple[float, int, int, str | None]] = {}
    for i in range(U + 1):
        options = [(float(p.start_accuracy * budget.scale_for(p.stream)(i * d)), i, 0, None)]
        for r in range(1, U + 1):
            for c in p.configs:
                v = window_accuracy(p.start_accuracy, c.accuracy, c.cost, i * d, r * d, budget, stream=p.stream)
                options.append((float(v), i, r, c.config))
        for o in options:
            if (o[1], o[2]) not in top or o[0] > top[(o[1], o[2])][0]:
                top[(o[1], o[2])] = o
    return list(top.values())


def brute_force(profiles: Sequence[StreamProfile], budget: Budget, fed: bool = False) -> float:
    """Best mean window accuracy over every (config or none, I, R) per stream that packs.

    fed: only plans every scheduler may make, where no stream gets zero inference while the cluster has
    a quantum per stream.
    """
    d = budget.delta
    cap = budget.accelerators * units_per_accelerator(budget.delta)
    floor = 1 if fed and cap >= len(profiles) else 0
    best = -1.0
    options = [[o for o in _best_per_quanta(p, budget) if o[1] >= floor] for p in profiles]
    for combo in itertools.product(*options):
        if sum(o[1] + o[2] for o in combo) > cap:
            continue
        total = sum(o[0] for o in combo)
        if total <= best * len(combo):
            continue
        plans = [StreamPlan(p.stream, o[3], o[1] * d, o[2] * d if o[3] else 0.0) for p, o in zip(profiles, combo)]
        if packable(plans, budget.accelerators):
            best = total / len(combo)
    return best
