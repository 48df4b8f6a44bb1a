"""What a tracked run gives MLflow's compare view: few, short, flat params; long values in an artifact; cell tags."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from ekya.composition import run_config
from ekya.results.tracking import LONG_PARAMS, MAX_PARAM_CHARS, split_params


def test_split_params_keeps_short_flat_values_and_drops_targets():
    curve = [1.0, 0.78, 0.64, 0.6, 0.44, 0.42, 0.41, 0.33]
    short, long = split_params({"scheduler": {"_target_": "ekya.plans.schedulers.thief.ThiefScheduler",
                                              "rule": "sweep", "starts": ["fair", "inference"]},
                                "cluster": {"inference": {"relative_accuracy": curve}, "delta": 0.05},
                                "seed": 0})
    assert short == {"scheduler.rule": "sweep", "scheduler.starts": "['fair', 'inference']", "cluster.delta": "0.05",
                     "seed": "0"}
    assert long == {"cluster.inference.relative_accuracy": curve}


def test_a_runs_params_are_short_and_its_long_values_are_an_artifact(make_cfg, tmp_path: Path):
    from mlflow.tracking import MlflowClient

    cfg = make_cfg("runtime=simulate", "runtime.synthetic.streams=2", "runtime.synthetic.windows=2",
                   "scheduler=thief", "cluster.accelerators=2", "seed=3")
    run_config(cfg, tmp_path / "run", quiet=True)
    client = MlflowClient(str(cfg.tracking.uri))
    parents = [r for r in client.search_runs([client.get_experiment_by_name("synthetic-profiles").experiment_id])
               if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    run = parents[0]
    params = run.data.params

    # the compare view lines these up as columns: each fits one, and none names a class
    assert params and max(len(v) for v in params.values()) <= MAX_PARAM_CHARS
    assert not [k for k in params if "_target_" in k]
    assert params["cluster.delta"] == str(cfg.cluster.delta) and params["window.seconds"] == str(cfg.window.seconds)

    # the curve arrays and the config space are in the artifact, exactly as configured
    assert "cluster.inference.relative_accuracy" not in params and "configspace.configs" not in params
    path = client.download_artifacts(run.info.run_id, LONG_PARAMS, str(tmp_path / "dl"))
    long = json.loads(Path(path).read_text())
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert long["cluster.inference.relative_accuracy"] == resolved["cluster"]["inference"]["relative_accuracy"]
    assert long["configspace.configs"] == resolved["configspace"]["configs"]
    assert set(long).isdisjoint(params)

    # what the compare view needs to tell the cells apart, and the headline metric
    tags = run.data.tags
    assert {k: tags[k] for k in ("scheduler", "accelerators", "streams", "seed", "runtime")} == {
        "scheduler": "thief", "accelerators": "2", "streams": "2", "seed": "3", "runtime": "simulate"}
    assert {"mean_accuracy", "mean_noretrain_accuracy"} <= set(run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "accuracy")) == 2  # one point per window
