"""The thief's gap to the exact optimum, on random small instances and at deployment scale.

ratio = predicted window accuracy of the thief's (packed) plan / that of the exact optimum over the
same plan space (schedulers/optimal.py), both on the same profiles with the same model. Sizes:

* ``small``: 1-4 streams, 1-2 accelerators, Delta in {0.1, 0.2, 0.25}, 2-8 configs, random window,
  label delay and throughput curve (the original benchmark, same generator and seeds);
* ``e2e``: the default deployment: 6 streams, 1 accelerator, Delta 0.05, the 8 configs of
  conf/configspace/cpu.yaml, 200 s window, 2 s label delay, "mps" throughput, default inference curve;
* ``10x2``: the same with 10 streams on 2 accelerators.

An instance whose optimum cannot be proved within ``--time-limit`` (HiGHS) is skipped, not counted.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from omegaconf import OmegaConf

from ekya.configspace import load_configspace
from ekya.errors import EkyaError
from ekya.hydra_compose import CONF_DIR
from ekya.plans.budget import make_budget
from ekya.plans.schedulers.optimal import OptimalScheduler
from ekya.plans.schedulers.thief import ThiefScheduler
from ekya.plans.types import Budget
from ekya.profiles.synthetic import generate_profile_set
from ekya.profiles.types import StreamProfile

#: about how long a run with the default arguments takes on 2 CPU cores (python -m ekya.bench --help)
DURATION = "about 10 s"

# size -> (streams, accelerators); None = the random small instances
SIZES: dict[str, tuple[int, int] | None] = {"small": None, "e2e": (6, 1), "10x2": (10, 2)}
COUNTS = {"small": 60, "e2e": 200, "10x2": 200}


def instance(rng: np.random.Generator, seed: int) -> tuple[tuple[StreamProfile, ...], Budget]:
    """One random small instance: (profiles, budget)."""
    streams = int(rng.integers(1, 5))
    budget = make_budget(
        accelerators=int(rng.integers(1, 3)),
        window=float(rng.uniform(60, 240)),
        delta=float(rng.choice([0.1, 0.2, 0.25])),
        label_delay=float(rng.choice([0.0, 2.0, 10.0])),
        throughput=str(rng.choice(["mps", "linear"])),
    )
    ps = generate_profile_set(streams=streams, windows=1, seed=seed, n_configs=int(rng.integers(2, 9)))
    return ps.truth[0], budget


@lru_cache(maxsize=1)
def cpu_space() -> dict[str, dict]:
    """The default config space (conf/configspace/cpu.yaml): name -> learner params."""
    raw = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "configspace" / "cpu.yaml"))
    return {n: dict(c.params) for n, c in load_configspace(raw).items()}


def deployment(streams: int, accelerators: int, seed: int) -> tuple[tuple[StreamProfile, ...], Budget]:
    """One deployment-scale instance: default config space, Delta 0.05, 200 s window, 2 s label delay, mps."""
    budget = make_budget(accelerators=accelerators, window=200.0, delta=0.05, label_delay=2.0, throughput="mps")
    ps = generate_profile_set(streams=streams, windows=1, seed=seed, space=cpu_space())
    return ps.truth[0], budget


def ratio(thief: ThiefScheduler, opt: OptimalScheduler, profiles: Sequence[StreamProfile],
          budget: Budget) -> float | None:
    """Thief / optimum predicted accuracy, or None if the optimum was not proved in its time limit."""
    try:
        best = opt.plan(profiles, budget).predicted_accuracy
    except EkyaError:
        return None
    got = thief.plan(profiles, budget).predicted_accuracy
    return got / best if best > 0 else 1.0


def main(argv: list[str]) -> dict:
    """Return {size: {"median_ratio", "min_ratio", "instances", "skipped"}, "rule", "starts"} (thief / optimum)."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench optimality")
    ap.add_argument("--sizes", default=",".join(SIZES), help=f"comma list of {', '.join(SIZES)}")
    ap.add_argument("--instances", type=int, default=None,
                    help="instances per size (default: " + ", ".join(f"{k} {v}" for k, v in COUNTS.items()) + ")")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rule", default="sweep", choices=["sweep", "single"])
    ap.add_argument("--starts", default=",".join(ThiefScheduler().starts), help="the thief's starts (its default)")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds for the optimum's integer programme")
    a = ap.parse_args(argv)
    sizes = [s for s in a.sizes.split(",") if s]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        ap.error(f"unknown size(s) {unknown}; choose from {', '.join(SIZES)}")
    thief = ThiefScheduler(rule=a.rule, starts=tuple(a.starts.split(",")))
    opt = OptimalScheduler(time_limit=a.time_limit)
    out: dict = {}
    for size in sizes:
        n = COUNTS[size] if a.instances is None else a.instances
        shape = SIZES[size]
        rng = np.random.default_rng(a.seed)
        ratios, skipped = [], 0
        for k in range(n):
            if shape is None:
                profiles, budget = instance(rng, a.seed * 100_003 + k)
            else:  # own seeds per size, so e2e and 10x2 draw unrelated cameras
                profiles, budget = deployment(*shape, a.seed * 100_003 + 10_000 * list(SIZES).index(size) + k)
            q = ratio(thief, opt, profiles, budget)
            if q is None:
                skipped += 1
            else:
                ratios.append(q)
        out[size] = {"median_ratio": round(statistics.median(ratios), 4) if ratios else None,
                     "min_ratio": round(min(ratios), 4) if ratios else None,
                     "instances": len(ratios), "skipped": skipped}
    return {**out, "rule": a.rule, "starts": a.starts}
