"""The optimality benchmark at deployment scale: instance shapes, thief <= optimum, the per-size output."""

from __future__ import annotations

import pytest

from ekya.bench.optimality import SIZES, deployment, main
from ekya.plans.schedulers.optimal import OptimalScheduler
from ekya.plans.schedulers.thief import ThiefScheduler


@pytest.mark.parametrize("size, streams, accelerators", [("e2e", 6, 1), ("10x2", 10, 2)])
def test_deployment_instances(size: str, streams: int, accelerators: int) -> None:
    opt = OptimalScheduler()
    thieves = [ThiefScheduler(), ThiefScheduler(rule="single", starts=("fair",))]
    for seed in (0, 1):
        profiles, budget = deployment(*SIZES[size], seed=seed)
        assert len(profiles) == streams and budget.accelerators == accelerators
        assert budget.delta == 0.05 and budget.window == 200.0 and budget.label_delay == 2.0
        assert all(len(p.configs) == 8 for p in profiles)
        best = opt.plan(profiles, budget).predicted_accuracy
        for thief in thieves:
            got = thief.plan(profiles, budget).predicted_accuracy
            assert got <= best + 1e-9
            assert got / best >= 0.9


def test_main_reports_per_size() -> None:
    out = main(["--sizes", "e2e", "--instances", "3"])
    assert set(out) == {"e2e", "rule", "starts"}
    fig = out["e2e"]
    assert set(fig) == {"median_ratio", "min_ratio", "instances", "skipped"}
    assert fig["instances"] + fig["skipped"] == 3
    assert 0.9 <= fig["min_ratio"] <= fig["median_ratio"] <= 1.0 + 1e-9
