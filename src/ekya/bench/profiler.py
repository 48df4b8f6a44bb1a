"""Micro-profiling quality: predictions against fully trained results, every camera, window and config.

    python -m ekya.bench profiler [override ...]

Runs the default deployment in profiling mode (every config of the default space is also trained
fully on every camera and window) and compares, per (camera, window, config), the micro-profiled
prediction with what full training reached, on what the scheduler consumes a prediction as: the
retrained model's accuracy on the window's live data, which neither the profiler nor the job's
epoch selection (both on validation data of the training pool) ever saw:

- ``median_abs_acc_error``: the headline, |prediction - live accuracy|;
- ``no_change_error``: the same for the trivial guess "retraining changes nothing" (the deployed
  model's validation accuracy, observable at the window start), so the profiler's value over it
  is visible;
- ``spearman_gain``: rank correlation between predicted gain (prediction - start validation
  accuracy) and realised gain (live accuracy after - live accuracy before) over all predictions:
  whether the profiler can tell which configs and cameras gain;
- ``median_abs_val_error``: against the retrained model's accuracy on held-out validation data of
  its pool (what the trials extrapolate; secondary);
- ``median_rel_cost_error`` and ``profiling_cost_fraction`` (micro-profiling accelerator-seconds
  per window over the window's accelerator-seconds, averaged over windows).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ekya.bench._runs import run_cell, scratch

#: about how long a run with the default arguments takes on 2 CPU cores (python -m ekya.bench --help)
DURATION = "about 9 min"


def prediction_errors(table: pd.DataFrame) -> dict:
    """Error figures of a profiling.csv table (one row per window, camera and config)."""
    live = (table["predicted_accuracy"] - table["live_accuracy"]).abs()
    no_change = (table["start_val_accuracy"] - table["live_accuracy"]).abs()
    val = (table["predicted_accuracy"] - table["val_accuracy"]).abs()
    predicted_gain = table["predicted_accuracy"] - table["start_val_accuracy"]
    realised_gain = table["live_accuracy"] - table["start_live_accuracy"]
    rho = spearmanr(predicted_gain, realised_gain).statistic
    cost = (table["predicted_cost"] - table["cost"]).abs() / table["cost"]
    return {
        "median_abs_acc_error": round(float(live.median()), 4),
        "no_change_error": round(float(no_change.median()), 4),
        "spearman_gain": round(float(rho), 4) if np.isfinite(rho) else None,
        "median_abs_val_error": round(float(val.median()), 4),
        "median_rel_cost_error": round(float(cost.median()), 4),
        "mean_abs_acc_error": round(float(live.mean()), 4),
        "p90_abs_acc_error": round(float(np.quantile(live, 0.9)), 4),
        "predictions": int(len(table)),
    }


def main(argv: list[str]) -> dict:
    """Profile everything once and return the error figures and the profiling cost fraction."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench profiler")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with scratch() as tmp:
        df = run_cell(Path(tmp), "profile", ["scheduler=thief", "callbacks=[default,profile_all]", *args.overrides])
        table = pd.read_csv(Path(tmp) / "runs" / "profile" / "profiling.csv")
        from omegaconf import OmegaConf

        from ekya.composition import build_parts

        budget = build_parts(OmegaConf.load(Path(tmp) / "runs" / "profile" / "config.yaml"), ["budget"])["budget"]
    window_accel = budget.accelerators * budget.window
    per_window = df.groupby("window")["profiling_cost"].sum() / window_accel
    return {**prediction_errors(table), "profiling_cost_fraction": round(float(per_window.mean()), 4),
            "seconds": round(time.perf_counter() - t0, 1)}
