"""Thief decision time and accuracy at the paper's scale point (10 streams, 8 GPUs, 18 configs, Delta 0.1).

The paper reports 9.4 s for this point; we time our thief after a warm-up (median of repeats)
and play the window on the synthetic truth for thief, fair and noretrain.
"""

from __future__ import annotations

import argparse
import statistics
import time

from ekya.plans.budget import make_budget
from ekya.plans.playback import play_window
from ekya.plans.schedulers.fair import FairScheduler
from ekya.plans.schedulers.noretrain import NoRetrainScheduler
from ekya.plans.schedulers.thief import ThiefScheduler
from ekya.profiles.synthetic import generate_profile_set

#: about how long a run with the default arguments takes on 2 CPU cores (python -m ekya.bench --help)
DURATION = "about 2 s"


def main(argv: list[str]) -> dict:
    """Time the thief; return {"thief_seconds", "thief_acc", "fair_acc", "noretrain_acc"}."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench scheduler")
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--accelerators", type=int, default=8)
    ap.add_argument("--window", type=float, default=200.0)
    ap.add_argument("--delta", type=float, default=0.1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    ps = generate_profile_set(streams=a.streams, windows=1, seed=a.seed)
    truth = ps.truth[0]
    budget = make_budget(a.accelerators, a.window, a.delta)
    thief = ThiefScheduler()
    thief.plan(truth, budget)  # warm-up (imports, caches)
    times = []
    for _ in range(max(a.repeats, 1)):
        t0 = time.perf_counter()
        plan = thief.plan(truth, budget)
        times.append(time.perf_counter() - t0)
    out = {"thief_seconds": round(statistics.median(times), 4)}
    out["thief_acc"] = round(play_window(plan, truth, budget, thief).accuracy, 4)
    for name, sch in (("fair_acc", FairScheduler(config="full_d0.5_e15")), ("noretrain_acc", NoRetrainScheduler())):
        out[name] = round(play_window(sch.plan(truth, budget), truth, budget, sch).accuracy, 4)
    return out
