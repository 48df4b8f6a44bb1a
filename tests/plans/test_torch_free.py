"""The scheduler, the simulator and profile handling never import torch (design promise)."""

import subprocess
import sys

# every module of ekya.plans and ekya.profiles (found by walking the packages), the retraining config space they
# share with the learners, and the simulate runtime
CODE = """
import pkgutil, sys
import ekya.plans, ekya.profiles
names = [m.name for p in (ekya.plans, ekya.profiles) for m in pkgutil.walk_packages(p.__path__, p.__name__ + ".")]
assert "ekya.plans.playback" in names and "ekya.profiles.microprofiler" in names, names
for name in names + ["ekya.configspace", "ekya.execution.simulate"]:
    __import__(name)
print("torch" in sys.modules)
"""


def test_scheduling_and_simulation_import_without_torch():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


RUN = """
import sys
from pathlib import Path
from ekya.hydra_compose import compose_config
from ekya.composition import run_config
cfg = compose_config(["runtime=simulate", "runtime.synthetic.streams=3", "runtime.synthetic.windows=2",
                      "~tracking", "scheduler=thief"])
run = run_config(cfg, Path(sys.argv[1]), quiet=True)
assert len(run.frame) == 6
print("torch" in sys.modules)
"""


def test_a_whole_simulated_run_never_loads_torch(tmp_path):
    out = subprocess.run([sys.executable, "-c", RUN, str(tmp_path / "run")], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
