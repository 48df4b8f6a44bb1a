"""Shared helpers for the scheduling-core tests: tiny instances and a brute-force optimum."""

from __future__ import annotations

import itertools
from typing import Sequence

import pytest

from ekya.plans.accuracy import window_accuracy
from ekya.plans.budget import units_per_accelerator
from ekya.plans.packing import packable
from ekya.plans.types import Budget, StreamPlan
from ekya.profiles.types import ConfigProfile, StreamProfile


def stream(name: str, a0: float, *configs: tuple[str, float, float]) -> StreamProfile:
    """A StreamProfile from (config, accuracy, cost) triples."""
    return StreamProfile(name, a0, tuple(ConfigProfile(c, a, k) for c, a, k in configs))


def brute_force(profiles: Sequence[StreamProfile], budget: Budget) -> float:
    """Best mean window accuracy over every (config or none, I, R) per stream that packs."""
    U = units_per_accelerator(budget.delta)
    d = budget.delta
    per_stream = []
    for p in profiles:
        opts = []
        for i in range(U + 1):
            opts.append((float(p.start_accuracy * budget.scale_for(p.stream)(i * d)), i, 0, None))
            for r in range(1, U + 1):
                for c in p.configs:
                    v = window_accuracy(p.start_accuracy, c.accuracy, c.cost, i * d, r * d, budget, stream=p.stream)
                    opts.append((float(v), i, r, c.config))
        per_stream.append(opts)
    best = -1.0
    cap = budget.accelerators * U
    # prune: per stream keep the best option per (i, r)
    pruned = []
    for opts in per_stream:
        top: dict[tuple[int, int], tuple] = {}
        for o in opts:
            if (o[1], o[2]) not in top or o[0] > top[(o[1], o[2])][0]:
                top[(o[1], o[2])] = o
        pruned.append(list(top.values()))
    for combo in itertools.product(*pruned):
        if sum(o[1] + o[2] for o in combo) > cap:
            continue
        total = sum(o[0] for o in combo)
        if total <= best * len(combo):
            continue
        plans = [StreamPlan(p.stream, o[3], o[1] * d, o[2] * d if o[3] else 0.0) for p, o in zip(profiles, combo)]
        if packable(plans, budget.accelerators):
            best = total / len(combo)
    return best


@pytest.fixture
def brute():
    """The brute-force optimum function."""
    return brute_force
