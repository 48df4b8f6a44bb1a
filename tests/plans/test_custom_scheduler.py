"""A user adds a scheduler with one class and one YAML: the README's example, run as the README says."""

import os
import subprocess
import sys

import pandas as pd
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ekya.hydra_compose import CONF_DIR

from helpers.docs import doc_block


def test_the_readme_scheduler_runs_valid_on_the_default_deployment(tmp_path):
    (tmp_path / "my_sched.py").write_text(doc_block("extending.md", "# my_sched.py"))
    conf = tmp_path / "conf" / "scheduler"
    conf.mkdir(parents=True)
    (conf / "halfhalf.yaml").write_text(doc_block("extending.md", "# conf/scheduler/halfhalf.yaml"))
    # the default deployment (6 cameras, 1 accelerator, Delta 0.05), with shorter windows of data
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "EKYA_DATA": str(tmp_path / "data"), "HYDRA_FULL_ERROR": "0"}
    out = subprocess.run([sys.executable, "-m", "ekya", f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
                          "scheduler=halfhalf", "dataset.windows=2", "dataset.samples_per_chunk=60",
                          "learner.base_epochs=2"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = list((tmp_path / "outputs" / "runs").iterdir())
    df = pd.read_csv(run / "windows.csv")
    assert df["stream"].nunique() == 6
    assert (df["infer_share"] + df["train_share"]).groupby(df["window"]).sum().max() <= 1 + 1e-9
    assert (df["config"] != "none").all()


def test_shipped_yamls_instantiate():
    conf = CONF_DIR / "scheduler"
    for name in ("noretrain", "fair", "uniform", "thief", "optimal"):
        sch = instantiate(OmegaConf.load(conf / f"{name}.yaml"))
        assert sch.name == name
