"""A multirun's cells run in parallel worker processes: through joblib, and as Ray tasks (hydra/launcher=ekya_ray).

Each sweep is a real ``python -m ekya -m ...`` subprocess started in tmp_path. A probe Hydra callback
(written into tmp_path and put on PYTHONPATH, so every worker imports it) records, at the start of
each cell, the process it runs in and its Ray task, then waits until the other cell has started
too: a cell that ran alone (inline, or one after the other) never sees its partner.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

CELLS = ["runtime=simulate", "runtime.synthetic.streams=3", "runtime.synthetic.windows=2", "~tracking", "threads=1"]

PROBE = '''
import json, os, sys, time
from pathlib import Path
from hydra.experimental.callback import Callback


class Probe(Callback):
    def __init__(self, crash_seed=-1, partners=2):
        self.crash_seed, self.partners = int(crash_seed), int(partners)

    def on_multirun_start(self, config, **kwargs):
        Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        (Path(str(config.hydra.sweep.dir)) / "driver.json").write_text(json.dumps({"pid": os.getpid()}))

    def on_job_start(self, config, **kwargs):
        if int(config.seed) == self.crash_seed:
            os._exit(3)  # the worker process dies mid-cell
        task = None
        if "ray" in sys.modules and sys.modules["ray"].is_initialized():
            task = sys.modules["ray"].get_runtime_context().get_task_id()
        started = Path(str(config.hydra.sweep.dir)) / "started"
        started.mkdir(exist_ok=True)
        (started / str(config.hydra.job.num)).touch()
        deadline = time.monotonic() + 20
        while len(list(started.iterdir())) < self.partners and time.monotonic() < deadline:
            time.sleep(0.05)
        out = Path(str(config.hydra.runtime.output_dir))
        out.mkdir(parents=True, exist_ok=True)
        (out / "probe.json").write_text(json.dumps({
            "pid": os.getpid(), "ray_task": task, "job_id": str(config.hydra.job.id),
            "saw_partner": len(list(started.iterdir())) >= self.partners,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "torch_loaded": "torch" in sys.modules}))
'''


def sweep(tmp_path: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, Path]:
    """Run ``python -m ekya -m`` with the probe in tmp_path; the finished process and its multirun directory."""
    (tmp_path / "probe_callback.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("OMP_WAIT_POLICY", None)  # the entry point's own policy must reach the workers
    out = subprocess.run([sys.executable, "-m", "ekya", "-m", *CELLS, *overrides, "hydra.sweep.dir=multirun",
                          "+hydra.callbacks.probe._target_=probe_callback.Probe"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return out, tmp_path / "multirun"


def probes(multirun: Path) -> dict[str, dict]:
    """Each cell's probe record, by job number."""
    return {p.parent.name: json.loads(p.read_text()) for p in multirun.glob("*/probe.json")}


def cell_status(multirun: Path, num: str) -> str:
    """The status the cell left behind (ekya.sweeps' cell.json)."""
    return json.loads((multirun / num / "cell.json").read_text())["status"]


def test_joblib_runs_two_cells_at_once_in_worker_processes(tmp_path):
    out, multirun = sweep(tmp_path, "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert out.returncode == 0, out.stderr[-3000:]
    driver = json.loads((multirun / "driver.json").read_text())["pid"]
    cells = probes(multirun)
    assert sorted(cells) == ["0", "1"]
    assert all(c["saw_partner"] for c in cells.values()), cells  # both cells were running at the same time
    assert len({driver, *(c["pid"] for c in cells.values())}) == 3  # two workers, neither the driver
    assert {c["omp_wait_policy"] for c in cells.values()} == {"PASSIVE"}
    assert [cell_status(multirun, n) for n in ("0", "1")] == ["FINISHED", "FINISHED"]
    assert all((multirun / n / "windows.csv").is_file() for n in ("0", "1"))


@pytest.fixture(scope="module")
def ray_sweep(tmp_path_factory):
    """One sweep of three cells at once on the launcher's own loopback Ray (3 CPUs, 1 per cell); seed 13 kills its
    worker."""
    tmp_path = tmp_path_factory.mktemp("ray_sweep")
    return sweep(tmp_path, "seed=0,1,13", "hydra/launcher=ekya_ray", "hydra.launcher.local_cpus=3",
                 "hydra.launcher.num_cpus=1", "+hydra.callbacks.probe.crash_seed=13")


@pytest.mark.ray
@pytest.mark.xdist_group("ray")
def test_ekya_ray_runs_cells_as_parallel_ray_tasks(ray_sweep):
    out, multirun = ray_sweep
    driver = json.loads((multirun / "driver.json").read_text())["pid"]
    cells = probes(multirun)
    assert sorted(cells) == ["0", "1"], out.stderr[-3000:]
    assert all(c["saw_partner"] for c in cells.values()), cells
    tasks = [c["ray_task"] for c in cells.values()]
    assert all(tasks) and len(set(tasks)) == 2  # each cell ran inside a Ray task of its own
    assert driver not in {c["pid"] for c in cells.values()}
    for num, cell in cells.items():  # Hydra's job id of the cell is its Ray task's id
        hydra_yaml = yaml.safe_load((multirun / num / ".hydra" / "hydra.yaml").read_text())
        assert hydra_yaml["hydra"]["job"]["id"] == cell["ray_task"]
    assert {c["omp_wait_policy"] for c in cells.values()} == {"PASSIVE"}
    assert [cell_status(multirun, n) for n in ("0", "1")] == ["FINISHED", "FINISHED"]


@pytest.mark.ray
@pytest.mark.xdist_group("ray")
def test_ekya_ray_a_cell_whose_worker_dies_fails_alone(ray_sweep):
    out, multirun = ray_sweep
    assert out.returncode != 0  # the sweep reports the failure ...
    assert "seed=13" in out.stderr
    assert not (multirun / "2" / "probe.json").exists()
    # ... after the other cells of the batch finished
    assert [cell_status(multirun, n) for n in ("0", "1")] == ["FINISHED", "FINISHED"]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head_node():
    """A Ray head started with ``ray start`` on loopback, without ekya's policies in its environment; killed after."""
    temp = tempfile.mkdtemp(prefix="ekr", dir="/tmp")  # short: Ray's socket paths live under it
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    ray_cli = str(Path(sys.executable).with_name("ray"))
    # ray start runs a Ray Client server (port 10001 unless told) only where grpc is installed
    # (ray[client]); on the minimal ray that ekya depends on, naming its port is an error
    client_port = [f"--ray-client-server-port={free_port()}"] if importlib.util.find_spec("grpc") else []
    start = subprocess.Popen([ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", f"--temp-dir={temp}",
                              "--include-dashboard=false", "--disable-usage-stats",
                              *client_port, f"--dashboard-agent-listen-port={free_port()}"],
                             env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        assert start.wait(timeout=60) == 0, start.stderr.read()[-2000:]
        yield f"127.0.0.1:{port}"
    finally:
        try:  # every process of the head stays in the session `ray start` opened
            os.killpg(start.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.ray
@pytest.mark.xdist_group("ray")
def test_ekya_ray_joins_a_cluster_by_address_and_hands_its_workers_the_process_policies(head_node, tmp_path):
    out, multirun = sweep(tmp_path, "seed=0,1", "hydra/launcher=ekya_ray", f"hydra.launcher.address={head_node}")
    assert out.returncode == 0, out.stderr[-3000:]
    cells = probes(multirun)
    assert sorted(cells) == ["0", "1"] and all(c["ray_task"] for c in cells.values())
    # the head's workers were started without it: the launcher passed the driver's policy on
    assert {c["omp_wait_policy"] for c in cells.values()} == {"PASSIVE"}
    # the cells wrote into the driver's working directory, not the head's
    assert all((multirun / n / "windows.csv").is_file() for n in ("0", "1"))
