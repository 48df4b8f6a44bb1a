"""scripts/accelerator_check.py without a GPU: refuses with one line, and turns measured numbers into a profile.

The measuring itself needs an NVIDIA GPU with MPS; what it does with the numbers (the curve, the
30/70 proportion check, the cluster profile) is checked here from results in its own format.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ekya.bench._cluster_profile import ProportionCheck, SharePoint, profile_name, throughput_table, write_profile
from ekya.errors import EkyaError
from ekya.plans.curves import TrainThroughput

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "accelerator_check.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("accelerator_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _results(rate70: float, capacity_pair: tuple[float, float] | None = (1600.0, 3000.0)) -> dict:
    """Results as the script saves them: a sub-linear curve (10 % .. 100 %), the 30/70 pair and the capacity pair."""
    curve = []
    for pct in range(10, 101, 10):
        train = 4000.0 * (pct / 100) ** 0.6
        curve.append({"percent": pct, "sm_count": round(132 * pct / 100), "train_samples_per_s": train,
                      "train_gflops": train * 0.05, "infer_samples_per_s": 3 * train,
                      "infer_gflops": 3 * train * 0.017})
    return {"gpu": "NVIDIA H200", "driver": "580.1", "compute_mode": "Default", "date": "2026-12-01", "curve": curve,
            "pair": [{"percent": 30, "train_samples_per_s": 3000.0}, {"percent": 70, "train_samples_per_s": rate70}],
            "capacity_pair": None if capacity_pair is None else [
                {"percent": 30, "train_samples_per_s": capacity_pair[0]},
                {"percent": 70, "train_samples_per_s": capacity_pair[1]}],
            "model": "resnet10_w16 h256 32px", "train_batch": 32, "infer_batch": 256, "skipped": []}


def test_without_a_gpu_it_exits_2_with_one_line(tmp_path: Path) -> None:
    plain = tmp_path / "bin"
    plain.mkdir()
    (plain / "bash").symlink_to(shutil.which("bash"))  # no nvidia-smi, even on a GPU machine
    out = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "x.yaml")], capture_output=True,
                         text=True, timeout=120, env={"PATH": str(plain), "HOME": str(tmp_path)})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        ("accelerator_check: no NVIDIA GPU here (nvidia-smi is missing or lists none); "
         "run it on a machine with an NVIDIA GPU")]
    assert not (tmp_path / "x.yaml").exists()


@pytest.mark.parametrize("rate70,ok,code", [(7000.0, True, 0), (7900.0, True, 0), (4000.0, False, 1)])
def test_measured_results_become_a_cluster_profile(tmp_path: Path, rate70: float, ok: bool, code: int) -> None:
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps(_results(rate70)))
    out = tmp_path / "cluster" / "nvidia-h200.yaml"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--from-results", str(saved), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["pair_ok"] is ok and summary["pair_expected"] == pytest.approx(7 / 3, abs=1e-3)
    assert summary["profile"] == str(out)
    profile = yaml.safe_load(out.read_text())
    assert set(profile) == {"accelerators", "delta", "throughput", "capacity", "inference", "stream_inference"}
    # two jobs at 30 % and 70 % at once trained 1600 + 3000 samples/s; one alone at 100 %: 4000
    assert profile["capacity"] == pytest.approx(4600 / 4000) and summary["capacity"] == pytest.approx(1.15)
    t = profile["throughput"]
    assert t["shares"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    curve = TrainThroughput(kind=t["kind"], shares=tuple(t["shares"]), seconds_per_task=tuple(t["seconds_per_task"]),
                            capacity=profile["capacity"])
    # the lone-job curve is the measured throughput over the full-share one
    assert curve(1.0) == pytest.approx(1.0)
    assert curve.lone(0.3) == pytest.approx(0.3 ** 0.6, rel=1e-5)
    assert curve.lone(0.25) == pytest.approx((0.2 ** 0.6 + 0.3 ** 0.6) / 2, rel=1e-5)
    # a job's rate on the saturated device: its slice of the measured capacity where that is less
    assert curve(0.3) == pytest.approx(1.15 * 0.3, rel=1e-5) and curve(0.9) == pytest.approx(0.9 ** 0.6, rel=1e-5)
    assert (": ok." if ok else ": FAILED.") in out.read_text()
    assert "runtime.accelerator_gflops=200" in out.read_text()  # 4000 samples/s x 0.05 GFLOP at 100 %


def test_without_a_capacity_measurement_the_profile_keeps_the_conserving_default(tmp_path: Path) -> None:
    script = _load_script()
    summary = script.write_outputs(_results(7000.0, capacity_pair=None), tmp_path / "cluster" / "x.yaml", 0.2)
    text = (tmp_path / "cluster" / "x.yaml").read_text()
    assert yaml.safe_load(text)["capacity"] == 1.0 and summary["capacity"] is None
    assert "Capacity not measured" in text


def test_the_proportion_check_and_its_tolerance() -> None:
    check = ProportionCheck(0.3, 0.7, 300.0, 700.0, tolerance=0.2)
    assert check.ok and check.ratio == pytest.approx(7 / 3)
    assert ProportionCheck(0.3, 0.7, 300.0, 830.0, 0.2).ok  # +19 %
    assert not ProportionCheck(0.3, 0.7, 300.0, 900.0, 0.2).ok  # +29 %
    assert not ProportionCheck(0.3, 0.7, 500.0, 500.0, 0.2).ok  # an even split: MPS did not hold
    assert not ProportionCheck(0.3, 0.7, 0.0, 500.0, 0.2).ok


def _point(share: float, rate: float) -> SharePoint:
    return SharePoint(share, rate, rate, rate / 100, rate / 100)


def test_a_curve_needs_the_full_share_distinct_shares_and_positive_rates() -> None:
    with pytest.raises(EkyaError, match="include 1.0"):
        throughput_table([_point(0.5, 10.0), _point(0.9, 20.0)])
    with pytest.raises(EkyaError, match="once"):
        throughput_table([_point(0.5, 10.0), _point(0.5, 11.0), _point(1.0, 20.0)])
    with pytest.raises(EkyaError, match="positive training throughput"):
        throughput_table([_point(0.5, 0.0), _point(1.0, 20.0)])
    table = throughput_table([_point(1.0, 500.0), _point(0.5, 250.0)])
    assert table == {"kind": "mps", "shares": [0.5, 1.0], "seconds_per_task": [4.0, 2.0]}


def test_profiles_never_replace_the_default_and_are_named_after_the_device(tmp_path: Path) -> None:
    with pytest.raises(EkyaError, match="refusing to replace"):
        write_profile(tmp_path / "cluster" / "default.yaml", "accelerators: 1\n")
    with pytest.raises(EkyaError, match=".yaml"):
        write_profile(tmp_path / "cluster" / "h200.yml", "accelerators: 1\n")
    assert profile_name("NVIDIA H200") == "nvidia-h200"
    assert profile_name("NVIDIA A100-SXM4-80GB") == "nvidia-a100-sxm4-80gb"


def test_percentages_are_checked() -> None:
    script = _load_script()
    assert script.parse_percentages("100,10,50") == (10, 50, 100)
    for bad in ("10,50", "0,100", "abc", "150,100"):
        with pytest.raises(EkyaError, match="--percentages"):
            script.parse_percentages(bad)


FAKE_SMI = """#!/usr/bin/env bash
echo "NVIDIA Rehearsal, 1.0, Default"
"""


@pytest.mark.slow
def test_the_controller_runs_one_process_per_percentage_and_always_stops_mps(tmp_path: Path) -> None:
    """A CPU rehearsal (hidden --device cpu) under a stand-in MPS daemon: the orchestration, not MPS itself."""
    from test_mps_script import FAKE_CONTROL

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("nvidia-cuda-mps-control", FAKE_CONTROL.replace("sleep 120", "sleep 900")),
                       ("nvidia-smi", FAKE_SMI)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    calls, results, out = tmp_path / "calls", tmp_path / "results.json", tmp_path / "cluster" / "rehearsal.yaml"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "FAKE_CALLS": str(calls),
           "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "7"}
    pidfile = tmp_path / "mps" / "pipe" / "nvidia-cuda-mps-control.pid"
    try:
        proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--percentages", "100",
                               "--seconds", "0.5", "--check-batch", "32", "--budget", "240", "--results", str(results),
                               "--out", str(out), "--mps-dir", str(tmp_path / "mps")],
                              capture_output=True, text=True, timeout=280, env=env)
    finally:
        if pidfile.exists():  # the stand-in daemon this test started, had the script not stopped it
            subprocess.run(["kill", pidfile.read_text().strip()], check=False)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # on a CPU the 30/70 split is not enforced
    saved = json.loads(results.read_text())
    assert [r["percent"] for r in saved["curve"]] == [100]
    # each worker was a fresh process with the ray runtime's MPS environment for its percentage
    assert [r["env_percent"] for r in saved["curve"] + saved["pair"]] == ["100", "30", "70"]
    assert saved["skipped"] == []
    assert Path(saved["curve"][0]["env_pipe"]) == pidfile.parent
    assert "cmd=quit" in calls.read_text() and not pidfile.exists()  # MPS stopped
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["profile"] == str(out) and yaml.safe_load(out.read_text())["throughput"]["shares"] == [1.0]
