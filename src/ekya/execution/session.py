"""One invocation: config -> runtime -> windows -> records -> MLflow -> summary, resumable."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from ekya.errors import EkyaError
from ekya.execution.checkpoint import Checkpoint, RunState
from ekya.execution.runtime import Runtime
from ekya.results.records import records_frame
from ekya.results.summary import print_summary
from ekya.results.tracking import Tracker


def _config_for(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """The resolved config of this run: saved at the first start, reloaded when resuming."""
    saved = run_dir / "config.yaml"
    if cfg.get("resume"):
        if not saved.exists():
            raise EkyaError(f"resume={cfg.resume}: no ekya run there ({saved} is missing); "
                            "pass the directory an interrupted run printed")
        return OmegaConf.load(saved)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    OmegaConf.save(resolved, saved)
    return resolved


def build_runtime(cfg: DictConfig) -> Runtime:
    """The runtime named by runtime.name."""
    name = cfg.runtime.name
    if name == "emulate":
        from ekya.execution.emulate import EmulateRuntime

        return EmulateRuntime(cfg)
    if name == "simulate":
        from ekya.execution.simulate_runtime import SimulateRuntime

        return SimulateRuntime(cfg)
    raise EkyaError(f"runtime.name={name!r} is unknown; use runtime=emulate or runtime=simulate")


def _git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_name(cfg: DictConfig, scheduler: str) -> str:
    """A readable name for the parent run: dataset-scheduler-Gacc-seedS."""
    if cfg.tracking.get("run_name"):
        return str(cfg.tracking.run_name)
    return f"{cfg.dataset.name}-{scheduler}-{cfg.cluster.accelerators}acc-seed{cfg.seed}"


def run_session(cfg: DictConfig, run_dir: Path, quiet: bool = False) -> pd.DataFrame:
    """Run (or resume) one cell in run_dir; returns the per-window records."""
    run_dir = Path(run_dir)
    cfg = _config_for(cfg, run_dir)
    runtime = build_runtime(cfg)
    ckpt = Checkpoint(run_dir)
    state = ckpt.load() or RunState(next_window=runtime.windows[0])
    runtime.setup(state.runtime)

    tracker = Tracker(cfg.tracking.uri, str(cfg.tracking.experiment), cfg.tracking.get("artifact_root"), run_dir)
    tags = {"runtime": str(cfg.runtime.name), "dataset": str(cfg.dataset.name), "git_sha": _git_sha(),
            "run_dir": str(run_dir.resolve()), **runtime.describe()}
    name = run_name(cfg, runtime.scheduler.name)
    tracker.start(name, OmegaConf.to_container(cfg, resolve=True), runtime.streams, tags)

    # Windows that completed but were not yet logged when the previous process died.
    for w in sorted({r.window for r in state.records if r.window > state.logged_through}):
        tracker.log_window(w, [r for r in state.records if r.window == w])
        state.logged_through = w
    todo = [w for w in runtime.windows if w >= state.next_window]
    try:
        for w in tqdm(todo, desc="windows", unit="window", disable=quiet or None, leave=False):
            records = runtime.play(w)
            state = RunState(next_window=w + 1, logged_through=state.logged_through,
                             records=state.records + records, runtime=runtime.snapshot())
            ckpt.save(state)
            tracker.log_window(w, records)
            state.logged_through = w
            ckpt.save(state)
    except KeyboardInterrupt:
        tracker.finish({}, status="KILLED")
        raise

    df = records_frame(state.records)
    csv = run_dir / "windows.csv"
    df.to_csv(csv, index=False)
    tracker.log_artifact(csv)
    tracker.log_artifact(run_dir / "config.yaml")
    for path in runtime.finish(run_dir):
        tracker.log_artifact(path)
    title = f"{name}: mean window accuracy"
    if not quiet:
        print_summary(df, title)
    overall = df[["accuracy", "noretrain_accuracy"]].mean()
    tracker.finish({"mean_accuracy": float(overall["accuracy"]), "mean_noretrain_accuracy": float(overall["noretrain_accuracy"])})
    if not quiet:
        uri = str(cfg.tracking.uri)
        hint = f"mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite") else f"open {uri}"
        print(f"per-window records: {csv}\nMLflow: {hint}   (experiment {cfg.tracking.experiment!r})")
    return df
