"""The MLflow UI on a tracked sweep: a real server, its REST API, the compare view, stopped by its PID."""

from __future__ import annotations

import json
import os
import socket
import urllib.parse

import pytest

from ekya.analysis.ui import (
    SHARED_VIEW_TAG,
    chromium,
    compare_url,
    compare_view_state,
    experiment_id,
    experiment_tags,
    mlflow_server,
    parent_runs,
    run_tags,
    screenshot,
    share_view,
    shared_view_url,
    side_by_side,
)
from ekya.errors import EkyaError
from ekya.results.schema import CELL_TAGS

from analysis_sweep import EXPERIMENT, SCHEDULERS


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_server_serves_the_sweep_with_its_tags_and_stops_by_pid(sweep, tmp_path):
    with mlflow_server(sweep.uri, tmp_path / "server.log") as srv:
        port = urllib.parse.urlsplit(srv.url).port
        pid = srv.pid
        exp = experiment_id(srv, EXPERIMENT)
        assert experiment_tags(srv, exp)["mlflow.experimentKind"] == "custom_model_development"
        runs = parent_runs(srv, exp)
        # 16 cells and the superseded rerun are FINISHED parents; the failed and the dead cell are not
        assert len(runs) == 17
        for r in runs:
            tags = run_tags(r)
            assert set(CELL_TAGS) <= set(tags) and tags["scheduler"] in SCHEDULERS
            assert {m["key"] for m in r["data"]["metrics"]} >= {"mean_accuracy", "mean_noretrain_accuracy"}
        ordered = [run_tags(r) for r in side_by_side(runs)[:2]]
        assert [t["scheduler"] for t in ordered] == sorted(SCHEDULERS)  # one cell, its schedulers adjacent
        assert len({(t["accelerators"], t["streams"], t["seed"]) for t in ordered}) == 1
        url = compare_url(srv, exp, [r["info"]["run_id"] for r in runs[:4]])
        assert "#/compare-runs?runs=" in url and "workflowType=machine_learning" in url
        with pytest.raises(EkyaError, match="no such experiment"):
            experiment_id(srv, "nope")
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the server and every worker of its group are gone
    assert not _listening(port)


def test_the_server_is_stopped_when_the_body_fails(sweep, tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with mlflow_server(sweep.uri, tmp_path / "server.log") as srv:
            pid = srv.pid
            raise RuntimeError("boom")
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_the_shared_view_charts_mean_accuracy_beside_per_window_accuracy_of_the_chosen_runs(sweep, tmp_path):
    with mlflow_server(sweep.uri, tmp_path / "server.log") as srv:
        exp = experiment_id(srv, EXPERIMENT)
        runs = side_by_side(parent_runs(srv, exp))[:8]
        ids = [r["info"]["run_id"] for r in runs]
        metrics = sorted({m["key"] for r in runs for m in r["data"]["metrics"]})
        key = share_view(srv, exp, compare_view_state(ids, metrics))
        assert share_view(srv, exp, compare_view_state(ids, metrics)) == key  # a rerun rewrites the same tag
        tags = experiment_tags(srv, exp)
        url = shared_view_url(srv, exp, key)
    state = json.loads(tags[SHARED_VIEW_TAG + key])
    assert len(tags[SHARED_VIEW_TAG + key]) <= 5000  # MLflow's limit on an experiment tag's value
    # the page shows these runs only, and their two charts side by side
    assert state["searchFilter"] == "attributes.run_id IN (" + ", ".join(f"'{i}'" for i in ids) + ")"
    shown = [(c["type"], c["metricKey"]) for c in state["compareRunCharts"] if not c["deleted"]]
    assert shown == [("BAR", "mean_accuracy"), ("LINE", "accuracy")]
    assert state["compareRunSections"][0]["columns"] == 2
    # every other metric has a removed card: the UI would otherwise add a chart for it
    removed = {c["metricKey"] for c in state["compareRunCharts"] if c["deleted"]}
    assert removed == set(metrics) - {"mean_accuracy", "accuracy"} and "retrain_cost" in removed
    assert f"#/experiments/{exp}/runs?viewStateShareKey={key}&compareRunsMode=CHART" in url


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (Debian package `chromium`)")
def test_the_compare_view_is_rendered_to_a_png(sweep, tmp_path):
    with mlflow_server(sweep.uri, tmp_path / "server.log") as srv:
        exp = experiment_id(srv, EXPERIMENT)
        runs = side_by_side(parent_runs(srv, exp))[:3]
        ids = [r["info"]["run_id"] for r in runs]
        key = share_view(srv, exp, compare_view_state(ids, ["accuracy", "mean_accuracy"]))
        png = screenshot(shared_view_url(srv, exp, key), tmp_path / "compare.png", (1200, 800),
                         wait_ms=30000)
        log = srv.log.read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the page fetched the runs it compares and queried the experiment (whose tag holds the view) and the charts
    assert '"POST /ajax-api/2.0/mlflow/runs/search HTTP/1.1" 200' in log
    assert '"POST /graphql HTTP/1.1" 200' in log


def test_a_finished_run_prints_the_link_that_opens_its_runs_table(sweep, capsys):
    from mlflow.tracking import MlflowClient

    from ekya.composition import run_config
    from ekya.hydra_compose import compose_config

    from analysis_sweep import cell_overrides

    run_config(compose_config(cell_overrides(sweep.root, "fair", 1, 2, 0, experiment="linked")),
               sweep.root / "runs" / "linked", quiet=False)
    exp = MlflowClient(sweep.uri).get_experiment_by_name("linked").experiment_id
    out = capsys.readouterr().out
    assert (f"mlflow ui --backend-store-uri {sweep.uri}, then open "
            f"http://127.0.0.1:5000/#/experiments/{exp}?workflowType=machine_learning") in out
