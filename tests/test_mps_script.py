"""scripts/mps.sh: refuses without the MPS tools, keeps its daemon under the project, stops safely.

A GPU is not needed: a stand-in ``nvidia-cuda-mps-control`` on PATH behaves as the real one does
towards the script (``-d`` daemonises and writes its pid file into the pipe directory, ``quit`` on
stdin ends it) and records every call with the environment it got.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "mps.sh"
BASH = shutil.which("bash") or "/bin/bash"

FAKE_CONTROL = """#!/usr/bin/env bash
dirs="pipe=$CUDA_MPS_PIPE_DIRECTORY log=$CUDA_MPS_LOG_DIRECTORY"
echo "args=$* cvd=${CUDA_VISIBLE_DEVICES-unset} $dirs" >> "$FAKE_CALLS"
pidfile="$CUDA_MPS_PIPE_DIRECTORY/nvidia-cuda-mps-control.pid"
if [ "${1:-}" = -d ]; then
    nohup sleep 120 >/dev/null 2>&1 &
    echo $! > "$pidfile"
    exit 0
fi
while read -r cmd; do
    echo "cmd=$cmd" >> "$FAKE_CALLS"
    case "$cmd" in
        quit) kill "$(cat "$pidfile")"; rm -f "$pidfile" ;;
        get_server_list) echo 4242 ;;
    esac
done
"""

FAKE_SMI = """#!/usr/bin/env bash
echo "nvidia-smi $*" >> "$FAKE_CALLS"
"""


def _run(arg: str, cwd: Path, path: str, calls: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EKYA_MPS_DIR"}
    env.update(PATH=path, FAKE_CALLS=str(calls), CUDA_VISIBLE_DEVICES="3", EKYA_MPS_STOP_WAIT="5")
    return subprocess.run([BASH, str(SCRIPT), arg], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("nvidia-cuda-mps-control", FAKE_CONTROL), ("nvidia-smi", FAKE_SMI)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _plain_path(tmp_path: Path) -> str:
    """A PATH with only the coreutils the script uses (so no MPS tools, even on a GPU machine)."""
    plain = tmp_path / "plain"
    plain.mkdir()
    for tool in ("tr", "mkdir", "seq", "sleep", "env", "cat", "rm"):
        (plain / tool).symlink_to(shutil.which(tool))
    return str(plain)


def test_start_refuses_clearly_without_the_mps_tools_and_stop_is_safe(tmp_path: Path) -> None:
    path = _plain_path(tmp_path)
    out = _run("start", tmp_path, path, tmp_path / "calls")
    assert out.returncode == 2
    assert "nvidia-cuda-mps-control not found" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    for arg in ("stop", "status"):
        out = _run(arg, tmp_path, path, tmp_path / "calls")
        assert out.returncode == 0 and "not running" in out.stdout


def test_daemon_lives_under_the_project_and_stops_on_quit(tmp_path: Path, fake_bin: Path) -> None:
    project, calls = tmp_path / "project", tmp_path / "calls"
    project.mkdir()
    path = f"{fake_bin}:/usr/bin:/bin"
    pid = None
    try:
        out = _run("start", project, path, calls)
        assert out.returncode == 0, out.stderr
        pipe, log = project / ".ekya/mps/pipe", project / ".ekya/mps/log"
        assert f"export CUDA_MPS_PIPE_DIRECTORY={pipe}" in out.stdout
        pid = int((pipe / "nvidia-cuda-mps-control.pid").read_text())
        assert log.is_dir()
        # the daemon sees no CUDA_VISIBLE_DEVICES, so an actor's GPU index means the physical GPU
        assert f"args=-d cvd=unset pipe={pipe} log={log}" in calls.read_text()
        again = _run("start", project, path, calls)
        assert again.returncode == 0 and "already running" in again.stdout
        assert calls.read_text().count("args=-d") == 1
        status = _run("status", project, path, calls)
        assert "running" in status.stdout and "servers: 4242" in status.stdout
        stop = _run("stop", project, path, calls)
        assert stop.returncode == 0 and "stopped" in stop.stdout
        assert "cmd=quit" in calls.read_text()
        assert _run("stop", project, path, calls).returncode == 0  # again: nothing to do, still fine
        assert "nvidia-smi" not in calls.read_text()  # the compute mode is never touched
    finally:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)  # the stand-in daemon this test started, if stop failed
            except ProcessLookupError:
                pass


def test_ekya_mps_dir_moves_the_directories(tmp_path: Path, fake_bin: Path) -> None:
    calls = tmp_path / "calls"
    env_dir = tmp_path / "elsewhere"
    env = {k: v for k, v in os.environ.items()}
    env.update(PATH=f"{fake_bin}:/usr/bin:/bin", FAKE_CALLS=str(calls), EKYA_MPS_DIR=str(env_dir))
    try:
        out = subprocess.run([BASH, str(SCRIPT), "start"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert (env_dir / "pipe/nvidia-cuda-mps-control.pid").is_file()
    finally:
        subprocess.run([BASH, str(SCRIPT), "stop"], cwd=tmp_path, env=env, capture_output=True, timeout=60)
    assert not (env_dir / "pipe/nvidia-cuda-mps-control.pid").exists()
