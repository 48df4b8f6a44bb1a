"""This machine's real training and inference rate at several shares, written as a cluster profile.

    python -m ekya.bench calibrate [--shares 0.1,0.25,0.5,0.75,1.0] [--repeats 2] [--epochs 2]
                                   [--frames-per-second FPS] [--out PATH] [OVERRIDES...]

Runs what the ray runtime runs on a logical (CPU) accelerator: the configured learner's real
``retrain`` of one config on a real window, and ``predict`` in batches, on one torch thread
(``CPU_THREADS_PER_JOB``), held to each share by the duty cycle of ``ekya.execution.ray.share``.
It writes a conf/cluster profile (default: conf/cluster/calibrated.yaml, selected with
``cluster=calibrated``) whose throughput table is the measured curve, and reports the effective
training GFLOP/s (FLOPs the job computed / its wall time at the full share), which is what emulate's
``runtime.accelerator_gflops`` means, so ``cluster=calibrated runtime.accelerator_gflops=X`` lets
emulate predict the ray runtime on this machine when a window plays in real time. A ray window of
``window.seconds`` T played in ``runtime.window_wall_seconds`` W gives every job W/T of the wall time
per dataset second, so emulate predicts it with ``X * W / T``. With ``--frames-per-second`` (a
camera's frame rate in wall time) the profile's inference ``max_share`` is the measured share that
keeps up with it. Hydra overrides (e.g. ``learner.backbone=...``) choose the learner and dataset
measured. The figures are one JSON line last.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from ekya.bench._cluster_profile import SharePoint, inference_max_share, profile_yaml, write_profile
from ekya.errors import EkyaError
from ekya.hydra_compose import CONF_DIR

#: about how long a run with the default arguments takes on 2 CPU cores (python -m ekya.bench --help)
DURATION = "about 1 min (estimated; about 30 s with experiment=tiny)"

#: what calibrate measures unless told otherwise
DEFAULT_SHARES = (0.1, 0.25, 0.5, 0.75, 1.0)


def parse_shares(text: str) -> tuple[float, ...]:
    """Comma-separated shares in (0, 1], increasing, with 1.0 among them (the curve is relative to it)."""
    try:
        shares = tuple(sorted({round(float(v), 4) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise EkyaError(f"--shares {text!r}: give comma-separated numbers in (0, 1], e.g. 0.25,0.5,1.0") from None
    if not shares or shares[0] <= 0 or shares[-1] != 1.0:
        raise EkyaError(f"--shares {text!r}: every share must lie in (0, 1] and 1.0 must be among them")
    return shares


def share_point(share: float, train_walls: list[float], train_samples: int, train_flops: float,
                infer_walls: list[float], infer_samples: int, forward_flops: float) -> SharePoint:
    """One share's figures from the wall times of its repeated (identical) training and inference runs."""
    tw, iw = statistics.median(train_walls), statistics.median(infer_walls)
    if tw <= 0 or iw <= 0:
        raise EkyaError(f"share {share}: a measured run took no time; measure more work")
    return SharePoint(share=float(share), train_samples_per_s=train_samples / tw,
                      infer_samples_per_s=infer_samples / iw, train_gflops=train_flops / tw / 1e9,
                      infer_gflops=infer_samples * forward_flops / iw / 1e9)


def main(argv: list[str]) -> dict[str, Any]:  # noqa: PLR0915 - one linear measurement script, to be split
    """Measure, write the profile, return the figures."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench calibrate")
    ap.add_argument("--shares", default=",".join(str(s) for s in DEFAULT_SHARES),
                    help="shares of one logical accelerator to measure (1.0 must be among them)")
    ap.add_argument("--repeats", type=int, default=2, help="measured runs per share (the median counts)")
    ap.add_argument("--config", default=None, help="the configspace config retrained (default: the space's default)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of the measured job (the config's own: 0)")
    ap.add_argument("--window", type=int, default=1, help="the window whose training pool is trained on")
    ap.add_argument("--infer-batch", type=int, default=16, help="samples per inference batch")
    ap.add_argument("--infer-samples", type=int, default=480, help="samples classified per inference run")
    ap.add_argument("--frames-per-second", type=float, default=None,
                    help="a camera's frame rate in wall time: the profile's inference max_share keeps up with it")
    ap.add_argument("--out", default=str(CONF_DIR / "cluster" / "calibrated.yaml"), help="the profile written")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides choosing the learner and dataset")
    args = ap.parse_args(argv)
    shares = parse_shares(args.shares)
    if args.repeats < 1 or args.infer_batch < 1 or args.infer_samples < 1 or args.epochs < 0:
        raise EkyaError("--repeats, --infer-batch and --infer-samples must be at least 1, --epochs at least 0")
    t_start = time.perf_counter()

    import pandas as pd
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from ekya.bench._runs import scratch
    from ekya.composition import build_parts
    from ekya.configspace import RetrainConfig, load_configspace
    from ekya.execution.ray.share import CPU_THREADS_PER_JOB, DutyCycle, paced_training
    from ekya.hydra_compose import compose_config
    from ekya.learners.base import Learner
    from ekya.process import configure_torch
    from ekya.seeds import derive_seed
    from ekya.streams.windows import cut_windows

    with scratch() as tmp:
        # one camera and two windows suffice (the measured job is one camera's); overrides may change that
        cfg = compose_config([f"dataset.root={Path(tmp)}/data", "learner.accelerator=cpu", "dataset.cameras=1",
                              "dataset.windows=2", *args.overrides])
        configure_torch(CPU_THREADS_PER_JOB)
        parts = build_parts(cfg, ["window", "windows", "budget"])
        settings, windows, budget = parts["window"], parts["windows"], parts["budget"]
        if not 0 < args.window < windows:
            raise EkyaError(f"--window {args.window}: choose a retraining window in 1..{windows - 1}")
        ss = build_parts(cfg, ["stream_set"])["stream_set"]
        learner: Learner = instantiate(cfg.learner)  # only the protocol is used: any learner can be calibrated
        space = load_configspace(OmegaConf.to_container(cfg.configspace, resolve=True))
        name = args.config or cfg.configspace.get("default") or next(iter(space))
        if name not in space:
            raise EkyaError(f"--config {name!r} is not in the configspace; choose one of {sorted(space)}")
        config = space[name]
        if args.epochs > 0:  # a shorter job of the same kind: the per-sample rate is what is measured
            config = RetrainConfig(config.name, {**config.params, "epochs": args.epochs})
        cam = ss.cameras[0]
        w = cut_windows(ss.camera(cam), windows, settings, seed=derive_seed(0, "split", cam))[args.window]
        # an untrained model costs what a trained one does: FLOPs depend on the architecture only
        model = learner.new_model(len(ss.classes), seed=0)
        if w.test.empty:
            raise EkyaError(f"window {args.window} of camera {cam!r} has no live samples to classify; "
                            "choose another --window")
        # the window's live samples in time order, repeated up to --infer-samples
        live = pd.concat([w.test] * -(-args.infer_samples // len(w.test))).iloc[:args.infer_samples]
        batches = [live.iloc[i:i + args.infer_batch] for i in range(0, len(live), args.infer_batch)]
        forward_flops = float(learner.forward_flops(model))

        def train_once(share: float) -> tuple[float, Any]:
            cycle = DutyCycle(share)
            t0 = time.perf_counter()
            with paced_training(cycle):
                _, report = learner.retrain(model, config, w.train, w.val, ss, seed=0)
            return time.perf_counter() - t0, report

        def infer_once(share: float) -> float:
            cycle = DutyCycle(share)
            t0 = time.perf_counter()
            for batch in batches:
                with cycle.unit():
                    learner.predict(model, batch, ss)
            return time.perf_counter() - t0

        train_once(1.0)  # warm-up: crop cache, FLOP counting, first-call costs
        infer_once(1.0)
        train_walls: dict[float, list[float]] = {s: [] for s in shares}
        infer_walls: dict[float, list[float]] = {s: [] for s in shares}
        report = None
        for _ in range(args.repeats):  # round-robin, so a slow spell of the machine spreads over all shares
            for s in sorted(shares, reverse=True):
                wall, report = train_once(s)
                train_walls[s].append(wall)
                infer_walls[s].append(infer_once(s))
        assert report is not None
        points = [share_point(s, train_walls[s], report.samples_seen, report.train_flops, infer_walls[s],
                              len(live), forward_flops) for s in shares]

    full = points[-1]
    how = (f"python -m ekya.bench calibrate --shares {args.shares} --repeats {args.repeats}"
           + (" " + " ".join(args.overrides) if args.overrides else "")
           + f"; learner {cfg.learner.backbone} retraining {name!r} ({report.epochs} epochs) on "
           f"{report.train_samples} samples, {CPU_THREADS_PER_JOB} torch thread, CPU duty cycle")
    out = write_profile(args.out, profile_yaml(
        points, title="This machine's logical (CPU) accelerator, measured by ekya.bench calibrate.", how=how,
        accelerators=budget.accelerators, delta=budget.delta,
        notes=[(f"Measured on {time.strftime('%Y-%m-%d')}; a share is enforced by the duty cycle of "
                "ekya.execution.ray.share.")], frames_per_second=args.frames_per_second))
    return {
        "shares": list(shares),
        "train_samples_per_s": [round(p.train_samples_per_s, 1) for p in points],
        "train_gflops": [round(p.train_gflops, 4) for p in points],
        "infer_samples_per_s": [round(p.infer_samples_per_s, 1) for p in points],
        "infer_gflops": [round(p.infer_gflops, 4) for p in points],
        "rate_vs_full": [round(p.train_samples_per_s / full.train_samples_per_s, 3) for p in points],
        "accelerator_gflops": round(full.train_gflops, 4),
        "max_inference_share": inference_max_share(points, args.frames_per_second),
        "config": name,
        "profile": str(out),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
