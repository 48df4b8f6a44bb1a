"""What real execution on Ray costs, and how far emulate's numbers are from it.

    python -m ekya.bench ray-overhead [--cameras 4] [--windows 2] [--wall 20] [--repeats 2] [--share-change auto]

One CPU deployment (synthetic data, the thief) runs under runtime=ray (a local Ray on loopback, one
logical accelerator, ``--wall`` seconds per window) and under runtime=emulate twice: with the
default cluster model, and calibrated to this machine. Calibrating is ``ekya.bench calibrate``
run first, in the same process, on the same learner and dataset: its measured training curve and
inference keep-up share (for the cameras' frame rate in wall time) make a cluster profile, and its
full-share training rate X becomes emulate's ``accelerator_gflops`` as X * wall / window.seconds
(a ray window plays window.seconds of video in ``--wall`` seconds). The ray run plans with the same
calibrated profile, so both runtimes are told the same things. ``--share-change replace`` makes
every mid-window share change a replacement actor (what GPUs need; on CPU ``auto`` changes shares
in place), so replace_seconds measures that path.

Figures: plan_to_running_seconds (a window's plan to every actor serving, median over windows),
swap_seconds (loading returned weights into a live inference actor, the longest), lease_seconds
(a CPU share changed in place: from the change until Ray granted its lease and the new share
serves, the longest), replace_seconds (a share change carried out by a replacement actor, until it
serves, the longest; NaN when every change was made in place), share_changes (how many share
changes were carried out, either way), frames_lost (over the run), emulate_vs_ray_points (mean
absolute difference of window accuracy per camera and window, in points, calibrated emulate vs
ray) and same_configs (share of camera-windows where both chose the same config); the same two
against the default cluster model as emulate_default_vs_ray_points and default_same_configs;
job_wall_vs_flops_model (median over the jobs that finished, jobs_finished: a job's real wall time
over what its FLOPs at the calibrated rate and its share predict, i.e. what emulate charges).
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from ekya.bench import calibrate
from ekya.bench._runs import compose_cell, scratch
from ekya.composition import run_config

#: about how long a run with the default arguments takes on 2 CPU cores (python -m ekya.bench --help)
DURATION = "about 3 min (estimated)"


def main(argv: list[str]) -> dict:
    """Calibrate, run the same cell under emulate (default and calibrated) and ray; the overhead and the agreement."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench ray-overhead")
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--windows", type=int, default=2, help="windows played (after the bootstrap one)")
    ap.add_argument("--wall", type=float, default=20.0, help="wall seconds per window under runtime=ray")
    ap.add_argument("--repeats", type=int, default=2, help="calibrate's measured runs per share")
    ap.add_argument("--share-change", choices=("auto", "replace"), default="auto",
                    help="runtime.share_change of the ray run")
    args = ap.parse_args(argv)
    common = ["experiment=tiny", "threads=1", f"dataset.cameras={args.cameras}",
              f"dataset.windows={args.windows + 1}"]
    with scratch() as tmp:
        work = Path(tmp)

        def run(name: str, extra: list[str]) -> Any:
            cfg = compose_cell([*common, *extra, f"runtime.base_cache={work / 'base_models'}"], work / "mlflow.db",
                               work / "data")
            return cfg, run_config(cfg, work / "runs" / name, quiet=True)

        _, default = run("emulate_default", ["runtime=emulate"])
        T = default.runtime.budget.window  # the built window length, as every run of the cell has it
        # the busiest camera-window's frame rate once a window plays in --wall seconds
        fps = max(len(w[k].test) for w in default.runtime.retraining.windows_of.values()
                  for k in range(1, args.windows + 1)) / args.wall
        cal = calibrate.main(["--repeats", str(args.repeats), "--frames-per-second", f"{fps:.6g}",
                              "--out", str(work / "conf" / "cluster" / "calibrated.yaml"), *common])
        gflops = float(cal["accelerator_gflops"]) * args.wall / T
        calibrated = [f"hydra.searchpath=[file://{work / 'conf'}]", "cluster=calibrated",
                      f"runtime.accelerator_gflops={gflops:.6g}"]
        _, emulated = run("emulate", ["runtime=emulate", *calibrated])
        _, real = run("ray", ["runtime=ray", f"runtime.window_wall_seconds={args.wall}",
                              f"runtime.share_change={args.share_change}", *calibrated])
        stats = real.runtime.stats
    ray_ = real.frame.set_index(["window", "stream"]).sort_index()

    def agreement(frame: Any) -> tuple[float, float]:
        emu = frame.set_index(["window", "stream"]).sort_index()
        return (float(100 * (ray_["accuracy"] - emu["accuracy"]).abs().mean()),
                float((emu["config"] == ray_["config"]).mean()))

    def worst(key: str) -> float:
        values = stats.get(key) or []
        return float(max(values)) if values else math.nan

    # a real job's wall time against what its FLOPs at the calibrated rate and its share predict
    budget = real.runtime.budget
    done = ray_[np.isfinite(ray_["job_wall_seconds"]) & np.isfinite(ray_["completion_time"])]
    modelled = [cost / float(budget.train_rate(share)) * args.wall / T
                for cost, share in zip(done["retrain_cost"], done["train_share"])]
    job_ratio = (float(statistics.median(np.asarray(done["job_wall_seconds"]) / np.asarray(modelled))) if len(done)
                 else math.nan)
    points, same = agreement(emulated.frame)
    default_points, default_same = agreement(default.frame)
    return {
        "cameras": args.cameras, "windows": args.windows, "wall_seconds_per_window": args.wall,
        "share_change": args.share_change,
        "measured_gflops": float(cal["accelerator_gflops"]), "emulate_gflops": round(gflops, 4),
        "frames_per_second": round(fps, 3), "max_inference_share": cal["max_inference_share"],
        "emulate_accuracy": float(emulated.frame["accuracy"].mean()), "ray_accuracy": float(ray_["accuracy"].mean()),
        "emulate_default_accuracy": float(default.frame["accuracy"].mean()),
        "same_configs": same, "default_same_configs": default_same,
        "frames_skipped": int(ray_["frames_skipped"].sum()),
        "plan_to_running_seconds": float(statistics.median(stats["plan_to_running_seconds"])),
        "swap_seconds": worst("swap_seconds"), "lease_seconds": worst("lease_seconds"),
        "share_changes": len(stats.get("lease_seconds") or []) + len(stats.get("replace_seconds") or []),
        "replace_seconds": worst("replace_seconds"),
        "frames_lost": int(ray_["frames_lost"].sum()),
        "jobs_finished": int(len(done)), "job_wall_vs_flops_model": job_ratio,
        "emulate_vs_ray_points": points, "emulate_default_vs_ray_points": default_points,
    }
