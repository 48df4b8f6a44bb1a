"""End to end: thief against fair, the Uniform family and noretrain on identical data, over seeds.

    python -m ekya.bench e2e [--accelerators 1] [--seeds N] [--out DIR] [--jobs N] [override ...]

One cell of `python -m ekya.bench robustness` (its machinery, its result files, its seeds: 5 for one
accelerator, 3 otherwise): with the default --out, a cell measured by either benchmark is not
measured again by the other. Each member runs the default deployment (6 synthetic cameras) as a full
`python -m ekya` cell per seed; the figure is the mean window accuracy over cameras and windows,
with a 95 % interval over seeds. Beside the shipped thief run its two measurement instruments
(thief-free-profiling, thief-oracle), which split the thief's gap to the best baseline into
profiling cost, prediction and scheduling (see the robustness benchmark).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ekya.bench.robustness import CELLS, DEFAULT_OUT, UNIFORM_CONFIGS, all_members, measure, seeds_of, split_names

#: about how long a run with the default arguments takes on 2 CPU cores (python -m ekya.bench --help): 24 runs (3
#: seeds x 8 members) took 16 min with --accelerators 2; now 5 seeds x 10 members, an oracle run (every config, 8,
#: retrained on every camera-window) as about 8 runs: (45 + 5 x 8) / 24 x 16 min
DURATION = "about an hour (estimated: 16 min measured for 24 runs, scaled by the run count, an oracle run as 8 runs)"


def accelerator_cell(accelerators: int) -> tuple[str, tuple[str, ...]]:
    """The robustness cell of G accelerators: default for 1, acc2 for 2, accG beyond."""
    if accelerators == 1:
        return "default", CELLS["default"]
    name = f"acc{accelerators}"
    return name, CELLS.get(name, (f"cluster.accelerators={accelerators}",))


def main(argv: list[str]) -> dict:
    """Run (or read back) every member of one cell over seeds and return that cell's report."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench e2e", description=__doc__.splitlines()[0])
    ap.add_argument("--accelerators", type=int, default=1)
    ap.add_argument("--seeds", type=int, help="seeds (default: the robustness cell's, 5 for 1 accelerator, else 3)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process")
    ap.add_argument("--uniform-configs", default=",".join(UNIFORM_CONFIGS), help="configs of the Uniform family")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. dataset.cameras=8")
    args = ap.parse_args(argv)
    if args.accelerators < 1 or (args.seeds is not None and args.seeds < 1):
        ap.error("--accelerators and --seeds must be at least 1")
    t0 = time.perf_counter()
    cell, overrides = accelerator_cell(args.accelerators)
    seeds = args.seeds if args.seeds is not None else seeds_of(cell)
    report = measure({cell: overrides}, {cell: list(range(seeds))},
                     all_members(split_names(args.uniform_configs)), args.overrides, args.out, args.jobs)[cell]
    return {**report, "accelerators": args.accelerators, "seconds": round(time.perf_counter() - t0, 1)}
