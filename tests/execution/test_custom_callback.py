"""A user adds a callback with one class and one YAML: the README's example, run as the README says."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pandas as pd

from helpers.docs import doc_block


def test_the_readme_callback_runs_every_window(tmp_path):
    (tmp_path / "my_callbacks.py").write_text(doc_block("extending.md", "# my_callbacks.py"))
    conf = tmp_path / "conf" / "callbacks"
    conf.mkdir(parents=True)
    (conf / "print_gain.yaml").write_text(doc_block("extending.md", "# conf/callbacks/print_gain.yaml"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "HYDRA_FULL_ERROR": "0"}
    out = subprocess.run([sys.executable, "-m", "ekya", f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
                          "callbacks=[default,print_gain]", "runtime=simulate", "runtime.synthetic.streams=3",
                          "runtime.synthetic.windows=3"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    printed = re.findall(r"^window (\d+): ([+-]\d+\.\d) points$", out.stdout, re.M)
    (run,) = list((tmp_path / "outputs" / "runs").iterdir())
    df = pd.read_csv(run / "windows.csv")
    gains = (df["accuracy"] - df["noretrain_accuracy"]).groupby(df["window"]).mean()
    assert [int(w) for w, _ in printed] == [0, 1, 2]
    assert [float(g) for _, g in printed] == [round(100 * g, 1) for g in gains]
    assert (run / "schedule.json").exists()  # the default callbacks still ran beside it
