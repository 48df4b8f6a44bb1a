"""A user adds a learner from their own package with one class and one YAML: the README's example, as written."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import yaml

from helpers.docs import doc_block


def _run(cwd, env, *overrides):
    out = subprocess.run([sys.executable, "-m", "ekya", "experiment=tiny", "scheduler=uniform", "~tracking",
                          *overrides], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = [p for p in (cwd / "outputs" / "runs").iterdir() if p.name not in _run.seen]
    _run.seen.add(run.name)
    return run


_run.seen = set()


def test_the_readme_learner_loads_from_a_user_package_and_runs(tmp_path):
    pkg = tmp_path / "my_learners"
    (pkg / "conf" / "learner").mkdir(parents=True)
    (pkg / "__init__.py").write_text(doc_block("extending.md", "# my_learners/__init__.py"))
    (pkg / "conf" / "learner" / "head_only.yaml").write_text(
        doc_block("extending.md", "# my_learners/conf/learner/head_only.yaml"))
    # the user's package first, then whatever the path already holds (the ekya under test, where it is not installed)
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}

    mine = _run(tmp_path, env, "hydra.searchpath=[pkg://my_learners.conf]", "learner=head_only")
    theirs = _run(tmp_path, env)

    cfg = yaml.safe_load((mine / "config.yaml").read_text())
    assert cfg["learner"]["_target_"] == "my_learners.HeadOnly"
    assert cfg["learner"]["hidden"] == 256  # the rest of the fine-tuner's keys came through its defaults
    a, b = pd.read_csv(mine / "windows.csv"), pd.read_csv(theirs / "windows.csv")
    # the uniform baseline retrains every camera with every-layer config; the plug-in froze the
    # backbone, so each job really computed (and was charged) far fewer FLOPs
    assert (a["config"] == b["config"]).all() and not a["config"].str.startswith("frozen").any()
    assert (a["retrain_cost"] > 0).all()
    assert (a["retrain_cost"] < 0.5 * b["retrain_cost"]).all()
