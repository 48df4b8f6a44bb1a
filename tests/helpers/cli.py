"""``python -m ekya`` run as a user runs it, in a child process, from a test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers.stores import seed_store

#: tests/, put on the child's PYTHONPATH so that ``+callbacks...=helpers.crash.CrashAfter`` imports
TESTS = Path(__file__).resolve().parents[1]


def ekya(cwd: Path, *args: str, timeout: float = 600, data: Path | None = None, base_cache: Path | None = None,
         module: str = "ekya", store: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m MODULE ARGS`` in ``cwd``: its data cache in ``data`` (default ``cwd/data``), base models in
    ``base_cache`` when given, and (``store``) an empty MLflow store already in place."""
    if store:
        seed_store(cwd)
    if base_cache is not None:
        args = (*args, f"runtime.base_cache={base_cache}")
    env = {**os.environ, "EKYA_DATA": str(data or Path(cwd) / "data"), "HYDRA_FULL_ERROR": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def run_dir_of(cwd: Path) -> Path:
    """The one run folder a single run made under ``cwd/outputs/runs``."""
    (found,) = list((Path(cwd) / "outputs" / "runs").iterdir())
    return found
