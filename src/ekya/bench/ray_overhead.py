"""What real execution on Ray costs, and how far emulate's numbers are from it.

    python -m ekya.bench ray-overhead [--cameras 4] [--windows 2] [--wall 20]

One CPU deployment (synthetic data, the thief) runs under runtime=emulate and then under
runtime=ray (a local Ray on loopback, one logical accelerator, ``--wall`` seconds per window).
Figures: plan_to_running_seconds (a window's plan to every actor serving, median over windows),
swap_seconds (loading returned weights into a live inference actor, the longest), lease_seconds
(a CPU share changed in place: from the change until Ray granted its lease and the new share
serves, the longest), replace_seconds (a share change carried out by a replacement actor, until it
serves, the longest; NaN when every change was made in place), share_changes (how many share
changes were carried out, either way), frames_lost (over the run),
emulate_vs_ray_points (mean absolute difference of window accuracy per camera and window, in
points) and same_configs (share of camera-windows where both chose the same config).
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from ekya.bench._runs import compose_cell, scratch
from ekya.composition import run_config


def main(argv: list[str]) -> dict:
    """Run the same cell under emulate and ray; return the overhead figures and the agreement."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench ray-overhead")
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--windows", type=int, default=2, help="windows played (after the bootstrap one)")
    ap.add_argument("--wall", type=float, default=20.0, help="wall seconds per window under runtime=ray")
    args = ap.parse_args(argv)
    common = ["experiment=tiny", "threads=1", f"dataset.cameras={args.cameras}",
              f"dataset.windows={args.windows + 1}"]
    with scratch() as tmp:
        work = Path(tmp)
        frames = {}
        for kind, extra in (("emulate", []), ("ray", [f"runtime.window_wall_seconds={args.wall}"])):
            cfg = compose_cell([*common, f"runtime={kind}", *extra,
                                f"runtime.base_cache={work / 'base_models'}"], work / "mlflow.db", work / "data")
            run = run_config(cfg, work / "runs" / kind, quiet=True)
            frames[kind] = run.frame
            if kind == "ray":
                stats = run.runtime.stats
    emu, ray_ = (frames[k].set_index(["window", "stream"]).sort_index() for k in ("emulate", "ray"))
    diff = (ray_["accuracy"] - emu["accuracy"]).abs()

    def worst(key: str) -> float:
        values = stats.get(key) or []
        return float(max(values)) if values else math.nan

    return {
        "cameras": args.cameras, "windows": args.windows, "wall_seconds_per_window": args.wall,
        "emulate_accuracy": float(emu["accuracy"].mean()), "ray_accuracy": float(ray_["accuracy"].mean()),
        "same_configs": float((emu["config"] == ray_["config"]).mean()),
        "frames_skipped": int(ray_["frames_skipped"].sum()),
        "plan_to_running_seconds": float(statistics.median(stats["plan_to_running_seconds"])),
        "swap_seconds": worst("swap_seconds"), "lease_seconds": worst("lease_seconds"),
        "share_changes": len(stats.get("lease_seconds") or []) + len(stats.get("replace_seconds") or []),
        "replace_seconds": worst("replace_seconds"),
        "frames_lost": int(ray_["frames_lost"].sum()),
        "emulate_vs_ray_points": float(100 * diff.mean()),
    }
