"""python -m ekya.bench calibrate: its arithmetic, and one short real run that writes a usable cluster profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ekya.bench.calibrate import parse_shares, share_point
from ekya.errors import EkyaError
from ekya.hydra_compose import CONF_DIR
from ekya.plans.curves import TrainThroughput


def test_shares_must_include_the_full_accelerator() -> None:
    assert parse_shares("1.0,0.25,0.5,0.25") == (0.25, 0.5, 1.0)
    for bad in ("0.5,0.75", "0,1.0", "1.5,1.0", "x"):
        with pytest.raises(EkyaError, match="--shares"):
            parse_shares(bad)


def test_a_share_point_is_the_median_of_its_runs() -> None:
    # 400 training samples (4e9 FLOPs) in 2, 4 (a disturbed run) and 2.5 s: the median 2.5 s counts
    p = share_point(0.5, [2.0, 4.0, 2.5], 400, 4e9, [1.0, 1.0, 1.2], 200, 2e6)
    assert p.train_samples_per_s == pytest.approx(160.0)
    assert p.train_gflops == pytest.approx(1.6)  # what runtime.accelerator_gflops means: FLOPs / wall
    assert p.infer_samples_per_s == pytest.approx(200.0)
    assert p.infer_gflops == pytest.approx(0.4)
    with pytest.raises(EkyaError, match="no time"):
        share_point(0.5, [0.0], 1, 1.0, [1.0], 1, 1.0)


def test_a_short_calibration_writes_the_profile_it_measured(tmp_path: Path) -> None:
    out = tmp_path / "cluster" / "calibrated.yaml"
    # its own process, as users run it: calibrate sets torch's threads and determinism process-wide
    proc = subprocess.run([sys.executable, "-m", "ekya.bench", "calibrate", "--shares", "0.5,1.0", "--repeats", "1",
                           "--epochs", "1", "--infer-samples", "64", "--out", str(out), "dataset.samples_per_chunk=60"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["shares"] == [0.5, 1.0] and figures["profile"] == str(out)
    t = yaml.safe_load(out.read_text())["throughput"]
    curve = TrainThroughput(kind=t["kind"], shares=tuple(t["shares"]), seconds_per_task=tuple(t["seconds_per_task"]))
    # How closely the duty cycle holds a share is tests/ray/test_share.py's (on a virtual clock, exactly) and
    # the benchmark's rate_vs_full; timed here beside the other xdist worker it failed 3 of 5 suite runs.
    assert figures["rate_vs_full"][0] == pytest.approx(curve.lone(0.5), abs=1e-3)
    assert figures["accelerator_gflops"] > 0
    assert f"runtime.accelerator_gflops={figures['accelerator_gflops']:.4g}" in out.read_text()


def test_the_inference_curve_keeps_up_with_the_frame_rate_measured() -> None:
    from ekya.bench._cluster_profile import SharePoint, keep_up_share, profile_yaml
    from ekya.plans.curves import InferenceCurve

    pts = [SharePoint(0.25, 10.0, 100.0, 1.0, 1.0), SharePoint(0.5, 20.0, 180.0, 2.0, 2.0),
           SharePoint(1.0, 40.0, 400.0, 4.0, 4.0)]
    assert keep_up_share(pts, 50.0) == pytest.approx(0.125)  # proportional below the smallest share measured
    assert keep_up_share(pts, 140.0) == pytest.approx(0.375)  # halfway between 100 and 180 frames/s
    assert keep_up_share(pts, 900.0) == 1.0  # faster than a whole accelerator serves
    with pytest.raises(EkyaError, match="frames-per-second"):
        keep_up_share(pts, 0.0)
    inf = yaml.safe_load(profile_yaml(pts, title="t", how="h", frames_per_second=140.0))["inference"]
    curve = InferenceCurve(max_share=inf["max_share"], subsampling=tuple(inf["subsampling"]),
                           relative_accuracy=tuple(inf["relative_accuracy"]))
    assert curve(0.375) == 1.0 and curve(0.2) < 1.0  # keeps up from the measured share on, subsamples below
    default = yaml.safe_load(profile_yaml(pts, title="t", how="h"))
    assert default["inference"]["max_share"] == 0.25
    # a profile that does not say its cluster has the default one's: conf/cluster/default.yaml owns it
    shipped = yaml.safe_load((CONF_DIR / "cluster" / "default.yaml").read_text())
    assert (default["accelerators"], default["delta"]) == (shipped["accelerators"], shipped["delta"])
