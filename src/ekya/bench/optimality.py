"""Benchmark: the thief's gap to the exact optimum on random small instances.

ratio = predicted window accuracy of the thief's (packed) plan / that of the exact optimum over the
same plan space (schedulers/optimal.py), both on the same profiles with the same model.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from ekya.plans.budget import make_budget
from ekya.plans.schedulers.optimal import OptimalScheduler
from ekya.plans.schedulers.thief import ThiefScheduler
from ekya.profiles.synthetic import generate


def instance(rng: np.random.Generator, seed: int):
    """One random small instance: (profiles, budget)."""
    streams = int(rng.integers(1, 5))
    budget = make_budget(
        accelerators=int(rng.integers(1, 3)),
        window=float(rng.uniform(60, 240)),
        delta=float(rng.choice([0.1, 0.2, 0.25])),
        label_delay=float(rng.choice([0.0, 2.0, 10.0])),
        throughput=str(rng.choice(["mps", "linear"])),
    )
    ps = generate(streams=streams, windows=1, seed=seed, n_configs=int(rng.integers(2, 9)))
    return ps.truth[0], budget


def main(argv: list[str]) -> dict:
    """Return {"median_ratio", "min_ratio", "instances"} (thief / optimum)."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench optimality")
    ap.add_argument("--instances", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rule", default="sweep", choices=["sweep", "single"])
    ap.add_argument("--starts", default="fair,inference")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    thief = ThiefScheduler(rule=a.rule, starts=tuple(a.starts.split(",")))
    opt = OptimalScheduler()
    ratios = []
    for k in range(a.instances):
        profiles, budget = instance(rng, a.seed * 100_003 + k)
        best = opt.plan(profiles, budget).predicted_accuracy
        got = thief.plan(profiles, budget).predicted_accuracy
        ratios.append(got / best if best > 0 else 1.0)
    return {"median_ratio": round(statistics.median(ratios), 4), "min_ratio": round(min(ratios), 4), "instances": len(ratios)}
