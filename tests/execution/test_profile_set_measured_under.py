"""A profile set says what it was measured under, and simulate refuses one measured under another window."""

from __future__ import annotations

import dataclasses
import logging
import sys

import pytest

from ekya.profiles.io import write_profiles
from ekya.profiles.synthetic import generate_profile_set
from ekya.profiles.types import MeasuredUnder

from helpers.stores import seed_store

SIM = ["runtime=simulate", "scheduler=thief"]


def _profiles(tmp_path, measured_under: MeasuredUnder | None):
    ps = dataclasses.replace(generate_profile_set(streams=3, windows=2, seed=1), measured_under=measured_under)
    path = tmp_path / "profiles.json"
    write_profiles(path, ps)
    return path


def _cli(tmp_path, monkeypatch, *args: str) -> int:
    from ekya.__main__ import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.setattr(sys, "argv", ["ekya", *SIM, *args])
    seed_store(tmp_path)
    try:
        cli()
    except SystemExit as done:
        return int(done.code or 0)
    return 0


@pytest.mark.parametrize("args, then, now", [
    (["window.seconds=100"], "window.seconds=200", "window.seconds=100"),
    (["cluster.accelerators=2"], "cluster.accelerators=1", "cluster.accelerators=2"),
    (["cluster.delta=0.1"], "cluster.delta=0.05", "cluster.delta=0.1"),
])
def test_simulate_refuses_a_set_measured_under_another_window_or_cluster(tmp_path, monkeypatch, capfd, args, then,
                                                                          now):
    path = _profiles(tmp_path, MeasuredUnder(200.0, 1, 0.05))
    status = _cli(tmp_path, monkeypatch, f"runtime.profiles={path}", *args)
    lines = capfd.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("ekya: error: runtime.profiles="), lines
    assert f"measured under {then}, but this run has {now}; run with {then}" in lines[0]
    assert not list(tmp_path.glob("outputs/runs/*/windows.csv"))


def test_another_cluster_replays_when_asked_but_never_another_window(tmp_path, monkeypatch, capfd):
    path = _profiles(tmp_path, MeasuredUnder(200.0, 1, 0.05))
    assert _cli(tmp_path, monkeypatch, f"runtime.profiles={path}", "cluster.accelerators=2",
                "runtime.same_cluster=false") == 0
    assert len(list(tmp_path.glob("outputs/runs/*/windows.csv"))) == 1
    capfd.readouterr()
    assert _cli(tmp_path, monkeypatch, f"runtime.profiles={path}", "window.seconds=100",
                "runtime.same_cluster=false") == 2
    assert "measured under window.seconds=200, but this run has window.seconds=100" in capfd.readouterr().err


def test_a_set_written_before_the_record_is_replayed_with_a_warning(tmp_path, monkeypatch, caplog):
    path = _profiles(tmp_path, None)
    with caplog.at_level(logging.WARNING, logger="ekya.simulate"):
        assert _cli(tmp_path, monkeypatch, f"runtime.profiles={path}") == 0
    said = (f"runtime.profiles={path} records no window length or cluster (written by an older ekya): replayed as "
            "if measured under window.seconds=200 cluster.accelerators=1")
    assert [r.getMessage() for r in caplog.records if r.name == "ekya.simulate"] == [said]
