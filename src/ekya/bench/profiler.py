"""Micro-profiling quality: predictions against fully trained results, every camera, window and config.

    python -m ekya.bench profiler [override ...]

Runs the default deployment in profiling mode (every config of the default space is also trained
fully on every camera and window) and compares, per (camera, window, config), the micro-profiled
prediction with what full training reached:

- ``median_abs_acc_error``: against the fully trained model's accuracy on held-out (teacher-labelled)
  data of the pool it trained on: the quantity the micro-profiler estimates, as in the paper;
- ``median_abs_live_error``: against its accuracy on the next window's live data, which adds the
  drift between windows that no profiler can see;
- ``no_change_error``: the same median error for the guess "retraining changes nothing" (the start
  accuracy for every config), so the profiler's value over a trivial guess is visible;
- ``median_rel_cost_error`` and ``profiling_cost_fraction`` (micro-profiling accelerator-seconds
  per window over the window's accelerator-seconds, averaged over windows).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ekya.bench._runs import run_cell, scratch


def main(argv: list[str]) -> dict:
    """Profile everything once and return the median errors and the profiling cost fraction."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench profiler")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with scratch() as tmp:
        df = run_cell(Path(tmp), "profile", ["scheduler=thief", "runtime.profile_all=true", *args.overrides])
        table = pd.read_csv(Path(tmp) / "runs" / "profile" / "profiling.csv")
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(Path(tmp) / "runs" / "profile" / "config.yaml")
    acc_err = (table["predicted_accuracy"] - table["val_accuracy"]).abs()
    live_err = (table["predicted_accuracy"] - table["live_accuracy"]).abs()
    no_change = (table["start_val_accuracy"] - table["val_accuracy"]).abs()
    cost_err = (table["predicted_cost"] - table["cost"]).abs() / table["cost"]
    window_accel = float(cfg.cluster.accelerators) * float(cfg.window.seconds)
    per_window = df.groupby("window")["profiling_cost"].sum() / window_accel
    return {
        "median_abs_acc_error": round(float(acc_err.median()), 4),
        "median_rel_cost_error": round(float(cost_err.median()), 4),
        "profiling_cost_fraction": round(float(per_window.mean()), 4),
        "median_abs_live_error": round(float(live_err.median()), 4),
        "no_change_error": round(float(no_change.median()), 4),
        "mean_abs_acc_error": round(float(acc_err.mean()), 4),
        "p90_abs_acc_error": round(float(np.quantile(acc_err, 0.9)), 4),
        "predictions": int(len(table)),
        "seconds": round(time.perf_counter() - t0, 1),
    }
