"""The scheduler, the simulator and profile handling never import torch (design promise)."""

import subprocess
import sys

MODULES = ["ekya.plans.schedulers.thief", "ekya.plans.schedulers.optimal", "ekya.plans.schedulers.replay",
           "ekya.plans.simulate", "ekya.execution.simulate", "ekya.execution.simulate_runtime",
           "ekya.profiles.io", "ekya.profiles.original", "ekya.profiles.synthetic", "ekya.profiles.microprofiler"]


def test_scheduling_and_simulation_import_without_torch():
    code = "import sys\n" + "".join(f"import {m}\n" for m in MODULES) + "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
