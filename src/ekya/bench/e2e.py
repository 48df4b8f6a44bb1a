"""End to end: thief against fair, uniform and noretrain on identical data and seed (emulate runtime).

    python -m ekya.bench e2e [--accelerators 1] [override ...]

Each scheduler runs the default deployment (6 synthetic cameras) as a full `python -m ekya` cell;
the figure is the mean window accuracy over cameras and windows.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ekya.bench._runs import run_cell, scratch

SCHEDULERS = ("thief", "fair", "uniform", "noretrain")


def main(argv: list[str]) -> dict:
    """Run the four schedulers and return their mean accuracies."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench e2e")
    ap.add_argument("--accelerators", type=int, default=1)
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. dataset.cameras=8")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    out: dict = {}
    with scratch() as tmp:
        for sched in SCHEDULERS:
            df = run_cell(Path(tmp), sched, [f"scheduler={sched}", f"cluster.accelerators={args.accelerators}",
                                             *args.overrides])
            out[sched] = round(float(df["accuracy"].mean()), 4)
            print(f"{sched}: {out[sched]:.4f}", flush=True)
    best = max(out[s] for s in SCHEDULERS[1:])
    out.update(seconds=round(time.perf_counter() - t0, 1), accelerators=args.accelerators,
               thief_margin_points=round(100 * (out["thief"] - best), 2))
    return out
