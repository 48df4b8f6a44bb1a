"""Compare runs tracked in MLflow: one table and two seaborn figures per experiment.

    python analysis/compare.py --experiment synthetic [--uri sqlite:///mlflow.db] [--out figures]

Writes <out>/runs.csv (one row per parent run: scheduler, accelerators, seed, mean accuracy with
and without retraining), <out>/windows.csv (per-window accuracy of every run), accuracy_vs_accelerators.png
and accuracy_per_window.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def load_runs(uri: str, experiment: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parent runs of an experiment, and the per-window accuracy history of each."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"no MLflow experiment {experiment!r} at {uri}; run `python -m ekya` first")
    runs = client.search_runs([exp.experiment_id], filter_string="attributes.status = 'FINISHED'", max_results=10000)
    rows, windows = [], []
    for r in runs:
        if "mlflow.parentRunId" in r.data.tags:
            continue
        p = r.data.params
        sched = p.get("scheduler._target_", "?").rsplit(".", 1)[-1].replace("Scheduler", "").lower()
        rows.append({"run_id": r.info.run_id, "run_name": r.info.run_name, "scheduler": sched,
                     "accelerators": int(float(p.get("cluster.accelerators", "nan"))), "seed": p.get("seed"),
                     "runtime": p.get("runtime.name"), "mean_accuracy": r.data.metrics.get("mean_accuracy"),
                     "mean_noretrain_accuracy": r.data.metrics.get("mean_noretrain_accuracy")})
        for m in client.get_metric_history(r.info.run_id, "accuracy"):
            windows.append({"run_id": r.info.run_id, "scheduler": sched, "accelerators": rows[-1]["accelerators"],
                            "window": m.step, "accuracy": m.value})
    return pd.DataFrame(rows), pd.DataFrame(windows)


def plot(runs: pd.DataFrame, windows: pd.DataFrame, out: Path) -> list[Path]:
    """Draw the two figures into out and return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, ax = plt.subplots(figsize=(5, 3.5))
    sns.lineplot(data=runs, x="accelerators", y="mean_accuracy", hue="scheduler", marker="o", ax=ax)
    ax.set(xlabel="accelerators", ylabel="mean window accuracy")
    fig.tight_layout()
    paths.append(out / "accuracy_vs_accelerators.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.lineplot(data=windows, x="window", y="accuracy", hue="scheduler", style="accelerators", marker="o", ax=ax)
    ax.set(xlabel="window", ylabel="window accuracy (mean over streams)")
    fig.tight_layout()
    paths.append(out / "accuracy_per_window.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--uri", default="sqlite:///mlflow.db")
    ap.add_argument("--out", default="figures", type=Path)
    args = ap.parse_args(argv)
    runs, windows = load_runs(args.uri, args.experiment)
    if runs.empty:
        print(f"experiment {args.experiment!r} has no finished runs", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.out / "runs.csv", index=False)
    windows.to_csv(args.out / "windows.csv", index=False)
    summary = runs.groupby(["scheduler", "accelerators"])[["mean_accuracy", "mean_noretrain_accuracy"]].mean()
    print(summary.round(3).to_string())
    for p in plot(runs, windows, args.out):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
