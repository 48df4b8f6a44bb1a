"""Fixtures of the scheduling-core tests (the builders themselves live in tests/helpers/plans.py)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from ekya.plans.packing import packable
from ekya.plans.quanta import total_units
from ekya.plans.types import Budget, StreamPlan
from ekya.profiles.types import StreamProfile

from helpers.plans import _best_per_quanta


def brute_force_fed(profiles: Sequence[StreamProfile], budget: Budget) -> float:
    """Best mean window accuracy over every (config or none, I, R) per stream that packs and gives inference.

    As ``helpers.plans.brute_force``, but over the plans every scheduler may make: a stream never
    gets zero inference while the cluster has a quantum per stream.
    """
    d, cap = budget.delta, total_units(budget)
    floor = 1 if cap >= len(profiles) else 0
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


@pytest.fixture
def brute():
    """The brute-force optimum function over plans that feed every stream's inference."""
    return brute_force_fed
