"""Scheduling and playing one window of 1,000 streams on 100 GPUs (the thief, played exactly)."""

from __future__ import annotations

import argparse
import time

from ekya.plans.budget import make_budget
from ekya.plans.playback import play_window
from ekya.plans.schedulers.thief import ThiefScheduler
from ekya.profiles.synthetic import generate_profile_set

#: about how long a run with the default arguments takes on 2 CPU cores (python -m ekya.bench --help)
DURATION = "about 6 s"


def main(argv: list[str]) -> dict:
    """Return {"streams", "seconds"} (scheduling + simulation, profile generation excluded)."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench simulate-scale")
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--accelerators", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    ps = generate_profile_set(streams=a.streams, windows=1, seed=a.seed)
    budget = make_budget(a.accelerators, 200.0, 0.1, label_delay=2.0)
    thief = ThiefScheduler()
    t0 = time.perf_counter()
    plan = thief.plan(ps.predicted[0], budget)
    t1 = time.perf_counter()
    out = play_window(plan, ps.truth[0], budget, thief, predicted=ps.predicted[0])
    t2 = time.perf_counter()
    return {"streams": a.streams, "seconds": round(t2 - t0, 3), "schedule_seconds": round(t1 - t0, 3),
            "play_seconds": round(t2 - t1, 3), "accuracy": round(out.accuracy, 4), "completions": len(out.completions)}
