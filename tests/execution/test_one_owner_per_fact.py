"""Each fact of a run has one owner: the window group's settings, the cluster group's Budget, the YAML's defaults."""

from __future__ import annotations

import dataclasses

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from ekya.composition import build_parts, run_config, window_settings
from ekya.errors import EkyaError
from ekya.execution.runtime import WindowSettings

SIM = ["runtime=simulate", "runtime.synthetic.streams=3", "runtime.synthetic.windows=2", "tracking.experiment=test"]


def test_the_window_group_is_read_as_the_settings_declare_it(make_cfg):
    settings = window_settings(make_cfg("window.seconds=100", "window.segments=4.0"))
    assert (settings.seconds, settings.segments) == (100.0, 4) and isinstance(settings.segments, int)
    with pytest.raises(EkyaError, match=r"window\.segments='x': must be a whole number"):
        window_settings(make_cfg("window.segments=x"))
    fields = sorted(f.name for f in dataclasses.fields(WindowSettings))
    with pytest.raises(EkyaError) as bad:
        window_settings(make_cfg("+window.sekonds=100"))
    assert str(bad.value) == f"window: unknown key(s) ['sekonds']; expected {fields}"
    # no second default in Python: a group without a key is refused, not filled in
    with pytest.raises(EkyaError, match=r"window: missing key\(s\) \['segments'\]"):
        window_settings(make_cfg("~window.segments"))


def test_the_budget_takes_the_window_and_the_cluster_defaults_from_the_config(make_cfg):
    cfg = make_cfg(*SIM, "window.seconds=150", "window.label_delay=3")
    parts = build_parts(cfg, ["budget"])
    budget = parts["budget"]
    assert (budget.window, budget.label_delay) == (parts["window"].seconds, parts["window"].label_delay) == (150, 3)
    # the YAML's delta (conf/cluster/default.yaml), not a second default written in Python
    assert budget.delta == cfg.cluster.delta == 0.05


def test_the_run_is_named_and_tagged_from_the_built_budget(make_cfg, tmp_path):
    run = run_config(make_cfg(*SIM, "scheduler=fair", "cluster.accelerators=3"), tmp_path / "run", quiet=True)
    assert run.name == "synthetic-profiles-fair-3acc-seed0" and run.tags["accelerators"] == "3"
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (parent,) = [r for r in client.search_runs([client.get_experiment_by_name("test").experiment_id])
                 if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.run_name == run.name and parent.data.tags["accelerators"] == "3"


@pytest.mark.parametrize("overrides, nodes", [([], {"local": 1}), (["cluster.accelerators=3"], {"local": 3}),
                                              (["cluster.accelerators=3", "runtime.nodes={a: 1, b: 2}"],
                                               {"a": 1, "b": 2})])
def test_ray_nodes_default_to_one_local_node_holding_the_cluster(make_cfg, overrides, nodes):
    cfg = make_cfg("runtime=ray", *overrides)
    assert OmegaConf.to_container(cfg.runtime, resolve=True)["nodes"] == nodes
