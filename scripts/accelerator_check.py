#!/usr/bin/env python
"""Check that MPS shares hold on this NVIDIA GPU and write its share-throughput curve as a cluster config.

    python scripts/accelerator_check.py [--out src/ekya/conf/cluster/<gpu>.yaml] [--seconds 3]
    python scripts/accelerator_check.py --from-results .ekya/accelerator_check/results.json [--out ...]

On a machine with an NVIDIA GPU (in DEFAULT compute mode: nothing here changes the compute mode, MIG
or any other GPU setting; no root needed) it
1. starts an MPS control daemon of its own (scripts/mps.sh, directories under .ekya/mps-check,
   ``--mps-dir``);
2. for each MPS percentage (10 % .. 100 %) starts one fresh process with the environment the ray
   runtime gives an actor (``ekya.execution.ray.share.gpu_env``: a percentage is fixed when a
   process starts) and measures the default edge model's training throughput (Adam steps at the
   learner's training batch) and inference throughput (batches of the learner's eval batch);
3. runs two processes at 30 % and 70 % at once, started together, on a training workload large
   enough to fill the GPU, and checks their throughputs split 30:70, within ``--tolerance``
   (default 0.2: the measured ratio rate(70 %)/rate(30 %) within 20 % of 7/3);
4. runs the same pair again on the curve's own workload (the learner's training batch) and writes the
   device's capacity for concurrent work, their summed training rate over one process's rate at 100 %
   (``cluster.capacity``: how many lone-job units the saturated device sustains; 1 = linear);
5. writes the training curve and the capacity as a conf/cluster profile (``cluster=<name>``) and the raw results
   as JSON; always stops the MPS daemon (also on Ctrl-C or SIGTERM); stays within ``--budget``
   seconds (default 290), skipping what would not fit.
Without an NVIDIA GPU it exits 2 with one line. Exit 1: measured, but the proportion check failed.
The last line printed is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO / "src"))

from ekya.bench._cluster_profile import ProportionCheck, SharePoint, profile_name, profile_yaml, write_profile  # noqa: E402
from ekya.errors import EkyaError  # noqa: E402
from ekya.execution.ray.share import gpu_env, mps_dirs  # noqa: E402

MPS_SCRIPT = REPO / "scripts" / "mps.sh"
DEFAULT_PERCENTAGES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
CHECK_PAIR = (30, 70)
#: seconds a fresh worker needs before it measures (interpreter, torch, CUDA context, warm-up)
WORKER_START_SECONDS = 12.0
#: worker processes running now, so an interrupted check can end them gracefully before stopping MPS
_live: list[subprocess.Popen[str]] = []


def parse_percentages(text: str) -> tuple[int, ...]:
    """Comma-separated whole MPS percentages in 1..100; 100 must be among them (the curve is relative to it)."""
    try:
        values = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise EkyaError(f"--percentages {text!r}: give whole percentages, e.g. 10,20,50,100") from None
    if not values or values[0] < 1 or values[-1] != 100:
        raise EkyaError(f"--percentages {text!r}: each must lie in 1..100 and 100 must be among them")
    return values


def points_from_results(results: dict[str, Any]) -> list[SharePoint]:
    """The curve's points from the per-percentage worker results (percent -> measured figures)."""
    points = []
    for r in results["curve"]:
        points.append(SharePoint(share=r["percent"] / 100.0, train_samples_per_s=r["train_samples_per_s"],
                                 infer_samples_per_s=r["infer_samples_per_s"], train_gflops=r["train_gflops"],
                                 infer_gflops=r["infer_gflops"]))
    return points


def proportion_from_results(results: dict[str, Any], tolerance: float) -> ProportionCheck | None:
    """The 30 %/70 % check from the two concurrent workers' results (None when it did not run)."""
    pair = results.get("pair")
    if not pair:
        return None
    a, b = pair
    return ProportionCheck(a["percent"] / 100.0, b["percent"] / 100.0, a["train_samples_per_s"],
                           b["train_samples_per_s"], tolerance)


def capacity_from_results(results: dict[str, Any]) -> float | None:
    """Lone-job units the saturated device sustained: the capacity pair's summed rate over the lone 100 % rate.

    None when the pair or the 100 % point was not measured (the profile then keeps the conserving default).
    """
    pair = results.get("capacity_pair")
    full = [r for r in results.get("curve", []) if r["percent"] == 100]
    if not pair or not full or full[0]["train_samples_per_s"] <= 0:
        return None
    return sum(r["train_samples_per_s"] for r in pair) / full[0]["train_samples_per_s"]


def write_outputs(results: dict[str, Any], out: Path | None, tolerance: float) -> dict[str, Any]:
    """Write the cluster profile from measured results; the summary figures."""
    points = points_from_results(results)
    gpu = results.get("gpu", "NVIDIA GPU")
    out = out or REPO / "src" / "ekya" / "conf" / "cluster" / f"{profile_name(gpu)}.yaml"
    check = proportion_from_results(results, tolerance)
    notes = [(f"GPU: {gpu}; driver {results.get('driver', '?')}; compute mode {results.get('compute_mode', '?')} "
              f"(left as it was); measured {results.get('date', '?')}."),
             "MPS SM count per percentage: "
             + ", ".join(f"{r['percent']}%: {r['sm_count']}" for r in results["curve"])]
    if check is not None:
        notes.append(f"Two processes at {CHECK_PAIR[0]} % and {CHECK_PAIR[1]} % at once: training rates "
                     f"{check.rate_a:.1f} and {check.rate_b:.1f} samples/s, ratio {check.ratio:.2f} "
                     f"(expected {check.expected:.2f}, tolerance {tolerance:.0%}): {'ok' if check.ok else 'FAILED'}.")
    capacity = capacity_from_results(results)
    if capacity is not None:
        a, b = results["capacity_pair"]
        notes.append(f"Capacity: two processes at {a['percent']} % and {b['percent']} % at once on the curve's batch "
                     f"trained {a['train_samples_per_s']:.1f} + {b['train_samples_per_s']:.1f} samples/s, "
                     f"{capacity:.3f} x one process at 100 %.")
    else:
        notes.append("Capacity not measured (the pair on the curve's batch did not run): the conserving default 1.0.")
    how = (f"python scripts/accelerator_check.py; edge model {results.get('model', '?')}, training batch "
           f"{results.get('train_batch', '?')}, inference batch {results.get('infer_batch', '?')}, "
           "one process per MPS percentage")
    path = write_profile(out, profile_yaml(points, title=f"{gpu}, one accelerator, shares enforced by NVIDIA MPS.",
                                           how=how, notes=notes, capacity=capacity))
    summary: dict[str, Any] = {
        "gpu": gpu, "profile": str(path),
        "percent": [r["percent"] for r in results["curve"]],
        "sm_count": [r["sm_count"] for r in results["curve"]],
        "train_samples_per_s": [round(p.train_samples_per_s, 1) for p in points],
        "infer_samples_per_s": [round(p.infer_samples_per_s, 1) for p in points],
        "accelerator_gflops": round(max(points, key=lambda p: p.share).train_gflops, 3),
        "skipped": results.get("skipped", []),
        "capacity": None if capacity is None else round(capacity, 3),
    }
    if check is not None:
        summary.update(pair_ratio=round(check.ratio, 3), pair_expected=round(check.expected, 3),
                       pair_tolerance=tolerance, pair_ok=check.ok)
    return summary


# -- the worker: one MPS client at one percentage ----------------------------------------------------


_stop = False


def _graceful(*_: Any) -> None:
    # never die mid-kernel under MPS: finish the step, synchronise, exit normally
    global _stop
    _stop = True


def _timed(step: Callable[[], object], seconds: float, per_step: int,
           sync: Callable[[], object]) -> tuple[float, list[float]]:
    """Run ``step`` for about ``seconds`` in chunks; the median chunk rate (items/s) and the chunk rates."""
    rates: list[float] = []
    chunk = max(0.25, seconds / 8)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and not _stop:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < chunk and not _stop:
            step()
            n += per_step
        sync()
        rates.append(n / (time.perf_counter() - t0))
    return (statistics.median(rates) if rates else math.nan), rates


def worker(args: argparse.Namespace) -> int:
    """Measure training and/or inference throughput of the default edge model in this (MPS client) process."""
    for sig in (signal.SIGTERM, signal.SIGINT):  # Ctrl-C reaches the whole process group
        signal.signal(sig, _graceful)
    import torch

    from ekya.hydra_compose import compose_config
    from ekya.learners.accelerator import resolve_accelerator
    from ekya.learners.flops import sample_flops
    from ekya.learners.model import EdgeModel
    from ekya.streams.classes import SIX_CLASSES

    # the default learner's edge model, built as FinetuneLearner.new_model builds it (without
    # importing Lightning: a worker's start-up is paid once per percentage)
    learner = compose_config([f"learner.accelerator={args.device}"]).learner
    dev = resolve_accelerator(learner.accelerator)
    torch.manual_seed(0)
    model = EdgeModel(learner.backbone, learner.hidden, len(SIX_CLASSES), learner.image_size).to(dev)
    size = model.image_size
    flops = sample_flops(model.backbone_name, model.hidden, model.num_classes, size)
    if dev.type == "cuda":
        sync, units = torch.cuda.synchronize, torch.cuda.get_device_properties(dev).multi_processor_count
    else:  # the CPU rehearsal of the controller (tests): no MPS, one thread
        torch.set_num_threads(1)
        sync, units = (lambda: None), 1
    out: dict[str, Any] = {"percent": args.percent, "sm_count": units,
                           "env_percent": os.environ.get("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"),
                           "env_pipe": os.environ.get("CUDA_MPS_PIPE_DIRECTORY")}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tb = args.train_batch
    x = torch.randint(0, 256, (tb, 3, size, size), dtype=torch.uint8, device=dev)
    y = torch.randint(0, model.num_classes, (tb,), device=dev)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    xi = torch.randint(0, 256, (args.infer_batch, 3, size, size), dtype=torch.uint8, device=dev)

    @torch.no_grad()
    def infer_step() -> None:
        model(xi).argmax(1)

    model.train()
    for _ in range(10):
        train_step()
    model.eval()
    for _ in range(5):
        infer_step()
    sync()
    if args.wait_go:  # start together with the other process of the proportion check
        print("ready", flush=True)
        sys.stdin.readline()
    model.train()
    rate, chunks = _timed(train_step, args.seconds, tb, sync)
    out.update(train_samples_per_s=rate, train_gflops=rate * flops.full_train / 1e9, train_chunks=chunks)
    if not args.wait_go:
        model.eval()
        rate, chunks = _timed(infer_step, args.seconds, args.infer_batch, sync)
        out.update(infer_samples_per_s=rate, infer_gflops=rate * flops.forward / 1e9, infer_chunks=chunks)
    sync()
    out.update(model=f"{model.backbone_name} h{model.hidden} {size}px", train_batch=tb, infer_batch=args.infer_batch)
    print(json.dumps(out), flush=True)
    return 0


# -- the controller ------------------------------------------------------------------------------------


def _gpu_info() -> dict[str, str]:
    """Name, driver and compute mode of GPU 0 from nvidia-smi; EkyaError when there is no NVIDIA GPU."""
    try:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,compute_mode", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        q = None
    rows = [r for r in (q.stdout.splitlines() if q is not None and q.returncode == 0 else []) if r.strip()]
    if not rows:
        raise EkyaError("accelerator_check: no NVIDIA GPU here (nvidia-smi is missing or lists none); "
                        "run it on a machine with an NVIDIA GPU")
    name, driver, mode = (v.strip() for v in rows[0].split(",")[:3])
    return {"gpu": name, "driver": driver, "compute_mode": mode}


def _mps(action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(MPS_SCRIPT), action], env=env, capture_output=True, text=True, timeout=60)


def _start_worker(percent: int, args: argparse.Namespace, pipe: Path, base_env: dict[str, str],
                  seconds: float, train_batch: int, wait_go: bool = False) -> subprocess.Popen[str]:
    env = {**base_env, **gpu_env(percent / 100.0, 0, pipe)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--percent", str(percent),
           "--seconds", str(seconds), "--train-batch", str(train_batch), "--infer-batch", str(args.infer_batch),
           "--device", args.device]
    if wait_go:
        cmd.append("--wait-go")
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _live.append(proc)
    return proc


def _finish(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """The worker's JSON result; on a timeout it is asked to stop (SIGTERM: it finishes its step and exits)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # last resort; the MPS daemon is restarted by the next run anyway
            out, err = proc.communicate()
    if proc in _live:
        _live.remove(proc)
    lines = [ln for ln in (out or "").splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker failed (exit {proc.returncode}): {(err or '').strip().splitlines()[-3:]}")
    return json.loads(lines[-1])


def _run_pair(args: argparse.Namespace, pipe: Path, base_env: dict[str, str], batch: int,
              deadline: float) -> list[dict[str, Any]]:
    """Two workers at CHECK_PAIR's percentages, both warmed up, then measuring at once; their results."""
    procs = [_start_worker(p, args, pipe, base_env, args.seconds, batch, wait_go=True) for p in CHECK_PAIR]
    for p in procs:  # both warmed up before either measures
        line = p.stdout.readline() if p.stdout else ""
        if line.strip() != "ready":
            raise RuntimeError(f"a concurrent-pair worker did not start: {line!r}")
    for p in procs:
        assert p.stdin is not None, "pair workers are started with a stdin pipe"
        p.stdin.write("go\n")
        p.stdin.flush()
    return [_finish(p, timeout=max(10.0, deadline - time.monotonic())) for p in procs]


def measure(args: argparse.Namespace, info: dict[str, str]) -> dict[str, Any]:
    """Start MPS, measure the curve and the proportion check, always stop MPS; the raw results."""
    t0 = time.monotonic()
    deadline = t0 + args.budget
    root = Path(args.mps_dir).resolve()
    dirs = mps_dirs(root)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CUDA_MPS_")}
    base_env.pop("CUDA_VISIBLE_DEVICES", None)
    mps_env = {**base_env, "EKYA_MPS_DIR": str(root)}
    results: dict[str, Any] = {**info, "date": time.strftime("%Y-%m-%d"), "curve": [], "pair": None,
                               "capacity_pair": None, "skipped": []}

    def stop_on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, stop_on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    started = _mps("start", mps_env)
    try:
        if started.returncode != 0:
            raise EkyaError(started.stderr.strip().splitlines()[-1] if started.stderr.strip()
                            else "accelerator_check: scripts/mps.sh start failed")
        print(started.stdout.strip(), file=sys.stderr)
        per_worker = WORKER_START_SECONDS + 2 * args.seconds
        pair_cost = WORKER_START_SECONDS + args.seconds + 10
        for pct in args.percentages:
            if time.monotonic() + per_worker + 2 * pair_cost > deadline:
                results["skipped"].append(f"{pct}%")
                continue
            proc = _start_worker(pct, args, dirs.pipe, base_env, args.seconds, args.train_batch)
            r = _finish(proc, timeout=max(10.0, deadline - time.monotonic() - 2 * pair_cost))
            results["curve"].append(r)
            results.update(model=r["model"], train_batch=r["train_batch"], infer_batch=r["infer_batch"])
            print(f"{pct:3d}%: {r['sm_count']} SMs, train {r['train_samples_per_s']:.0f}/s, "
                  f"infer {r['infer_samples_per_s']:.0f}/s", file=sys.stderr)
        if time.monotonic() + pair_cost <= deadline:
            results["pair"] = _run_pair(args, dirs.pipe, base_env, args.check_batch, deadline)
        else:
            results["skipped"].append("pair")
        if time.monotonic() + pair_cost <= deadline:
            results["capacity_pair"] = _run_pair(args, dirs.pipe, base_env, args.train_batch, deadline)
        else:
            results["skipped"].append("capacity_pair")
    finally:
        for proc in list(_live):  # interrupted: let each worker finish its step, then stop MPS
            proc.send_signal(signal.SIGTERM)
            if proc.stdin and not proc.stdin.closed:
                proc.stdin.close()  # a worker waiting for "go" goes on, sees the stop and exits
        for proc in list(_live):
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            _live.remove(proc)
        stopped = _mps("stop", mps_env)
        print(stopped.stdout.strip() or stopped.stderr.strip(), file=sys.stderr)
        for s, h in old.items():
            signal.signal(s, h)
    results["seconds"] = round(time.monotonic() - t0, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse, check for a GPU, measure (or reuse results), write the profile, print the summary."""
    ap = argparse.ArgumentParser(prog="python scripts/accelerator_check.py", description=__doc__.split("\n")[0])
    ap.add_argument("--percentages", default=",".join(map(str, DEFAULT_PERCENTAGES)), type=str)
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time per workload and process")
    ap.add_argument("--train-batch", type=int, default=32, help="training batch of the curve (the learner's default)")
    ap.add_argument("--infer-batch", type=int, default=256, help="inference batch (the learner's eval_batch_size)")
    ap.add_argument("--check-batch", type=int, default=2048, help="training batch of the 30/70 check (fills the GPU)")
    ap.add_argument("--tolerance", type=float, default=0.2, help="relative tolerance of the 30/70 throughput ratio")
    ap.add_argument("--budget", type=float, default=290.0, help="seconds the whole check may take")
    ap.add_argument("--out", type=Path, default=None, help="the cluster profile (default conf/cluster/<gpu>.yaml)")
    ap.add_argument("--results", type=Path, default=REPO / ".ekya" / "accelerator_check" / "results.json")
    ap.add_argument("--mps-dir", type=Path, default=REPO / ".ekya" / "mps-check",
                    help="this check's own MPS daemon directories (not a daemon the user runs)")
    ap.add_argument("--from-results", type=Path, default=None,
                    help="write the profile from saved results; no GPU needed")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--percent", type=int, default=100, help=argparse.SUPPRESS)
    ap.add_argument("--wait-go", action="store_true", help=argparse.SUPPRESS)
    # cpu: rehearse the whole controller (MPS script, one process per percentage, the concurrent pair)
    # without a GPU; the numbers then say nothing about MPS
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    try:
        args.percentages = parse_percentages(args.percentages)
        if not 0 < args.tolerance < 1:
            raise EkyaError(f"--tolerance {args.tolerance}: give a relative tolerance in (0, 1), e.g. 0.2")
        if args.from_results is not None:
            try:
                results = json.loads(Path(args.from_results).read_text())
            except (OSError, ValueError) as e:
                raise EkyaError(f"--from-results {args.from_results}: cannot read it ({e})") from None
        else:
            info = _gpu_info()
            if subprocess.run(["bash", "-c", "command -v nvidia-cuda-mps-control"], capture_output=True).returncode:
                raise EkyaError("accelerator_check: nvidia-cuda-mps-control not found on PATH; install the NVIDIA "
                                "driver's MPS tools")
            results = measure(args, info)
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps(results, indent=1))
        summary = write_outputs(results, args.out, args.tolerance)
    except EkyaError as e:
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("accelerator_check: interrupted; the MPS daemon was stopped", file=sys.stderr)
        return 130
    print(json.dumps(summary))
    return 0 if summary.get("pair_ok", False) else 1


if __name__ == "__main__":
    sys.exit(main())
