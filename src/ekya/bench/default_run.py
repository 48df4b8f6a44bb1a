"""Wall time of the quick start: `python -m ekya` with defaults, from an empty working directory.

    python -m ekya.bench default-run [override ...]

Includes generating the synthetic dataset and training the base models (nothing cached).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from ekya.bench._runs import scratch

#: about how long a run with the default arguments takes on 2 CPU cores (python -m ekya.bench --help)
DURATION = "about 85 s"


def main(argv: list[str]) -> dict:
    """Run the default deployment once as a user would and time it."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench default-run")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)
    with scratch() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "EKYA_DATA"}
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "ekya", *args.overrides], cwd=tmp, env=env,
                             capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if out.returncode != 0:
            raise SystemExit(f"python -m ekya failed:\n{out.stderr[-2000:]}")
        (csv,) = list(Path(tmp).glob("outputs/runs/*/windows.csv"))
        df = pd.read_csv(csv)
    return {"seconds": round(seconds, 1), "mean_accuracy": round(float(df["accuracy"].mean()), 4),
            "mean_noretrain_accuracy": round(float(df["noretrain_accuracy"].mean()), 4),
            "cameras": int(df["stream"].nunique()), "windows": int(df["window"].nunique())}
