"""Micro-profiling quality: predictions against fully trained results, every camera, window and config.

    python -m ekya.bench profiler [override ...]

Runs the default deployment in profiling mode (every config of the default space is also trained
fully on every camera and window) and compares, per (camera, window, config), the micro-profiled
prediction with the truth: absolute accuracy error, relative cost error, and the micro-profiling
cost as a fraction of the window's accelerator-seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ekya.bench._runs import run_cell, scratch
from ekya.profiles.io import read_profiles


def main(argv: list[str]) -> dict:
    """Profile everything once and return the median errors and the profiling cost fraction."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench profiler")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with scratch() as tmp:
        df = run_cell(Path(tmp), "profile", ["scheduler=thief", "runtime.profile_all=true", *args.overrides])
        ps = read_profiles(Path(tmp) / "runs" / "profile" / "profiles.json")
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(Path(tmp) / "runs" / "profile" / "config.yaml")
    acc_err, cost_err = [], []
    for truth_w, pred_w in zip(ps.truth, ps.predicted):
        for t, p in zip(truth_w, pred_w):
            for tc in t.configs:
                pc = p.config(tc.config)
                acc_err.append(abs(pc.accuracy - tc.accuracy))
                cost_err.append(abs(pc.cost - tc.cost) / tc.cost)
    window_accel = float(cfg.cluster.accelerators) * float(cfg.window.seconds)
    per_window = df.groupby("window")["profiling_cost"].sum() / window_accel
    return {
        "median_abs_acc_error": round(float(np.median(acc_err)), 4),
        "median_rel_cost_error": round(float(np.median(cost_err)), 4),
        "profiling_cost_fraction": round(float(per_window.mean()), 4),
        "mean_abs_acc_error": round(float(np.mean(acc_err)), 4),
        "p90_abs_acc_error": round(float(np.quantile(acc_err, 0.9)), 4),
        "predictions": len(acc_err),
        "seconds": round(time.perf_counter() - t0, 1),
    }
