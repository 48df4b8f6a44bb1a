"""What a failed or refused run leaves behind; `resume=` with other overrides; a bad output_root or seed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ekya.hydra_compose import compose_config

from helpers.stores import seed_store

TINY = ["experiment=tiny", "threads=1"]
CHEAP = ["runtime=simulate", "runtime.synthetic.streams=2", "runtime.synthetic.windows=2", "~tracking"]


@pytest.fixture
def cli(tmp_path, monkeypatch, capfd):
    """``python -m ekya ARGS`` in this process, started in tmp_path: its exit status and stderr lines."""
    from ekya.__main__ import cli as entry

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EKYA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    seed_store(tmp_path)

    def run(*args: str) -> tuple[int | str | None, list[str]]:
        monkeypatch.setattr(sys, "argv", ["ekya", *args])
        capfd.readouterr()
        with pytest.raises(SystemExit) as done:
            entry()
        return done.value.code, capfd.readouterr().err.strip().splitlines()

    return run


def _one_line(status, lines, *needles: str) -> str:
    assert status == 2 and len(lines) == 1 and lines[0].startswith("ekya: error: "), (status, lines)
    assert all(n in lines[0] for n in needles), lines[0]
    return lines[0]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name not in ("mlflow.db", "mlflow.db.lock"))


def test_a_run_that_fails_fast_leaves_no_run_folder(tmp_path, cli):
    # the value is checked inside the run, after the run folder (config.yaml, .hydra/) was made
    _one_line(*cli(*TINY, "cluster.accelerators=0"), "cluster.accelerators")
    assert _files(tmp_path) == []  # not even outputs/runs, which this run created


def test_a_run_that_fails_after_a_checkpoint_keeps_its_folder_to_resume(tmp_path, cli):
    # a schedule for window 0 only: window 0 is played and checkpointed, window 1 fails
    rows = [{"stream": s, "config": None, "infer_share": 0.5, "train_share": 0.0, "infer_device": 0,
             "train_device": 0} for s in ("cam0", "cam1")]
    (tmp_path / "plan.json").write_text(json.dumps({"format": "ekya-schedule/1", "windows": {"0": rows}}))
    status, lines = cli(*CHEAP, "scheduler=replay", "scheduler.path=plan.json")
    assert status == 2 and "no schedule for window 1" in lines[-1], lines
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    assert (run_dir / "state.pkl").exists() and (run_dir / "config.yaml").exists()


def _bad_run(folder: Path) -> Path:
    """A run folder whose saved config fails when resumed (no accelerators)."""
    folder.mkdir()
    OmegaConf.save(compose_config([*CHEAP, "cluster.accelerators=0"]), folder / "config.yaml")
    return folder


def test_a_resumed_run_that_fails_keeps_its_folder(tmp_path, cli):
    run_dir = _bad_run(tmp_path / "interrupted")
    # log_level is the one override a resumed run honours (its logging is set up before the config loads)
    _one_line(*cli(f"resume={run_dir}", "log_level=error"), "cluster.accelerators")
    assert _files(run_dir) == [".hydra", ".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml",
                               "config.yaml"]


def test_resume_with_other_overrides_is_refused_naming_them(tmp_path, cli):
    run_dir = _bad_run(tmp_path / "interrupted")
    before = _files(tmp_path)
    line = _one_line(*cli(f"resume={run_dir}", "scheduler=fair", "window.seconds=50"),
                     f"resume={run_dir}", "scheduler=fair window.seconds=50", "ignored", "log_level")
    assert "config it was started with" in line
    assert _files(tmp_path) == before  # refused before anything was written


def test_resume_of_a_folder_without_a_run_writes_nothing(tmp_path, cli):
    _one_line(*cli("resume=outputs/runs/nope"), "resume=outputs/runs/nope", "config.yaml is missing")
    assert _files(tmp_path) == []


@pytest.mark.parametrize("root", ["a_file/runs", "/proc/ekya_runs"], ids=["file-in-the-path", "proc"])
def test_an_unwritable_output_root_is_one_line_naming_it(tmp_path, cli, root):
    (tmp_path / "a_file").write_text("not a folder")
    _one_line(*cli(*TINY, f"output_root={root}"), f"output_root={root}", "a folder you can write to")
    assert _files(tmp_path) == ["a_file"] and not Path("/proc/ekya_runs").exists()


def test_a_seed_that_is_not_a_number_is_one_line_naming_it(tmp_path, cli):
    _one_line(*cli(*TINY, "seed=abc"), "seed='abc'", "whole number")
    assert _files(tmp_path) == []
