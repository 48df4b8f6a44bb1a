"""``--help`` of the two Hydra commands: what ekya does, examples that run, the docs pointer, and only real choices."""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from ekya.hydra_compose import compose_config


def _help(module: str) -> str:
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture(scope="module")
def ekya_help() -> str:
    return _help("ekya")


@pytest.fixture(scope="module")
def prepare_help() -> str:
    return _help("ekya.prepare")


def examples(text: str, module: str) -> list[list[str]]:
    """The example command lines of a help text that run ``python -m MODULE``, as argument lists after it."""
    found = []
    for line in text.splitlines():
        m = re.fullmatch(rf"\s+python -m {re.escape(module)}((?:\s.*)?)", line)
        if m:
            found.append(shlex.split(m[1]))
    return found


def cells(args: list[str]) -> list[list[str]]:
    """The override lists a command runs: one, or for ``-m`` every combination of its comma-separated values."""
    if "-m" not in args:
        return [args]
    choices = [[f"{o.split('=', 1)[0]}={v}" for v in o.split("=", 1)[1].split(",")] for o in args if o != "-m"]
    return [list(c) for c in itertools.product(*choices)]


def test_ekya_help_says_what_it_does_shows_examples_and_points_to_the_reference(ekya_help):
    assert ekya_help.startswith("ekya: continuous retraining of video-analytics models")
    assert "is powered by Hydra" not in ekya_help
    runs = examples(ekya_help, "ekya")
    assert [] in runs  # the default run
    assert ["-m", "scheduler=thief,fair", "cluster.accelerators=1,2"] in runs  # a sweep
    assert ["runtime=ray", "experiment=tiny"] in runs
    assert "Configuration reference (every group and key): docs/configuration.md" in ekya_help
    # the examples and the pointer come before Hydra's listing of groups and config
    assert ekya_help.index("docs/configuration.md") < ekya_help.index("== Configuration groups ==")
    assert "scheduler: fair, model_cache" in ekya_help and "== Config ==" in ekya_help


def test_ekya_help_examples_compose(ekya_help):
    runs = [overrides for args in examples(ekya_help, "ekya") for overrides in cells(args)]
    assert len(runs) == 1 + 4 + 1  # the default run, the sweep's 4 cells, runtime=ray
    for overrides in runs:
        cfg = compose_config(overrides)  # a HydraException here is a broken example
        for key, value in (o.split("=", 1) for o in overrides if "." in o.split("=", 1)[0]):
            assert str(OmegaConf.select(cfg, key)) == value


def test_internal_config_files_are_not_offered_as_choices(ekya_help):
    listing = ekya_help.split("== Configuration groups ==")[1].split("== Config ==")[0]
    assert "_size" not in listing
    groups = dict(line.split(": ", 1) for line in listing.splitlines() if ": " in line)
    assert all(not option.startswith("_") for options in groups.values() for option in options.split(", "))
    assert groups["experiment/paper"] == "ablations, allocation, capacity, profiler, streams, window_length"


def test_prepare_help_shows_its_own_keys_usage_and_an_example(prepare_help):
    assert prepare_help.startswith("Usage: python -m ekya.prepare video=PATH_OR_GLOB out=DIR")
    for key in ("video", "out", "fps", "labeler=NAME", "detector.kind"):
        assert re.search(rf"^\s+{re.escape(key)}\s", prepare_help, re.MULTILINE), key
    assert "classifier, ground_truth, noisy, trained" in prepare_help  # the labelers it accepts
    # none of the main app's groups, which prepare rejects
    for group in ("scheduler", "runtime", "cluster", "experiment", "== Configuration groups =="):
        assert group not in prepare_help
    (example,) = examples(prepare_help, "ekya.prepare")
    assert example == ["video=clips/*.mp4", "out=data/mycams"]
    cfg = compose_config(example, config_name="prepare")
    assert (cfg.video, cfg.out) == ("clips/*.mp4", "data/mycams")
    # and the run on its output that it suggests
    (then,) = [shlex.split(m) for m in re.findall(r"then run on it: python -m ekya (.*)", prepare_help)]
    assert compose_config(then).dataset.root == "data/mycams"
