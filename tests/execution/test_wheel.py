"""The package as users install it: a wheel, installed outside the source tree, runs with its own configs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def test_a_wheel_installed_outside_the_source_tree_runs(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(ROOT)], check=True, capture_output=True, timeout=600)
    (wheel,) = list(dist.glob("ekya-*.whl"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=600)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "EKYA_DATA": str(work / "data")}
    where = subprocess.run([sys.executable, "-c", ("import ekya, ekya.hydra_compose as c; print(ekya.__file__); "
                                                   "print(sorted(p.name for p in c.CONF_DIR.iterdir()))")],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(site))  # the installed copy, not the checkout
    assert "config.yaml" in where.stdout and "scheduler" in where.stdout
    out = subprocess.run([sys.executable, "-m", "ekya", "experiment=tiny", "threads=1", "dataset.windows=2",
                          "learner.base_epochs=1"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (csv,) = list(work.glob("outputs/runs/*/windows.csv"))
    assert len(pd.read_csv(csv)) == 2  # 2 cameras x 1 played window
