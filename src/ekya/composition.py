"""The composition root: every part of a run is built here from the config, then handed to the runtime.

``build_runtime`` instantiates the runtime named by ``runtime._target_`` with the parts its
constructor asks for, by parameter name (scheduler, budget, window, seed, space, profiler,
learner, stream_set, windows, base_key): no part ever receives the whole config. Parts are built
cheapest first, so a bad value fails in seconds, before any dataset is generated or any model
trained. The teacher (``labeler``) is applied to the dataset here, not inside loaders.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, get_type_hints

from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf

from ekya.callbacks.progress import preparing
from ekya.errors import EkyaError, user_error
from ekya.execution.hooks import Callback, RunContext
from ekya.execution.loop import run_windows
from ekya.execution.runtime import Runtime, WindowSettings
from ekya.hydra_compose import RENAMED_MODULES, renamed_targets
from ekya.process import configure_logging
from ekya.results import schema

#: config groups each constructor parameter of a runtime draws on (they are the run's MLflow params)
_GROUPS = {"scheduler": ("scheduler",), "budget": ("cluster",), "window": ("window",), "seed": ("seed",),
           "space": ("configspace",), "profiler": ("profiler",), "learner": ("learner", "threads"),
           "stream_set": ("dataset", "labeler"), "windows": ("dataset",)}
_ALWAYS = ("runtime", "seed", "log_level")


def instantiate(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, with a user error raised by the target passed on as the EkyaError it is.

    Hydra wraps whatever a ``_target_`` raises in its InstantiationException; unwrapped, the entry
    point prints the target's one-line message and exits with status 2.
    """
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as e:
        message = user_error(e)
        if message is None:
            raise
        raise EkyaError(message) from None


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _window_types() -> dict[str, type]:
    """Each ``window`` key and the type WindowSettings declares for it (a YAML value may come as an int)."""
    hints = get_type_hints(WindowSettings)
    return {f.name: hints[f.name] for f in dataclasses.fields(WindowSettings)}


def window_settings(cfg: DictConfig) -> WindowSettings:
    """The ``window`` group as a checked value."""
    raw = dict(_plain(cfg.window))
    types = _window_types()
    unknown = sorted(set(raw) - set(types))
    if unknown:
        raise EkyaError(f"window: unknown key(s) {unknown}; expected {sorted(types)}")
    missing = [key for key in types if key not in raw]
    if missing:
        raise EkyaError(f"window: missing key(s) {missing}; conf/config.yaml's window group sets every one")
    typed = {}
    for key, value in raw.items():
        kind = types[key]
        try:
            typed[key] = kind(value)
        except (TypeError, ValueError):
            what = {float: "a number", int: "a whole number", bool: "true or false"}[kind]
            raise EkyaError(f"window.{key}={value!r}: must be {what}") from None
    return WindowSettings(**typed)


def _labelled_stream_set(cfg: DictConfig) -> Any:
    """The dataset, loaded unlabelled, then labelled by the configured teacher."""
    from ekya.labels.teachers import apply_teacher

    dataset = dict(_plain(cfg.dataset))
    dataset.pop("windows", None)  # the run's window count, read by build_runtime
    return apply_teacher(instantiate(dataset), instantiate(cfg.labeler))


def _base_key(cfg: DictConfig, learner: Any) -> str:
    """Everything that shapes a camera's base model (the base-model cache key, before seed and camera).

    The learner's resolved device is part of it: ``accelerator: auto`` trains on CUDA where one
    exists, and a model trained there need not equal one trained on the CPU to the last bit.
    """
    shaping = {key: _plain(cfg.get(key)) for key in ("dataset", "labeler", "learner", "window")}
    shaping["device"] = str(getattr(learner, "device", None))
    return json.dumps(shaping, sort_keys=True, default=str)


def _builders(cfg: DictConfig, part: Callable[[str], Any]) -> dict[str, Callable[[], Any]]:
    """How to build each part a runtime may ask for, in the order they are built (cheap checks first).

    A builder that needs another part asks ``part(name)``, which builds it once.
    """
    from ekya.configspace import check_config_name, load_configspace
    from ekya.plans.budget import budget_from_config
    from ekya.streams.windows import check_run_windows

    def space() -> Any:
        out = load_configspace(_plain(cfg.configspace))
        check_config_name(getattr(part("scheduler"), "config", None), out, "scheduler.config")
        check_config_name(getattr(part("scheduler"), "fixed_config", None), out, "scheduler.fixed_config")
        return out

    def learner() -> Any:
        from ekya.learners.model_state import check_checkpoint
        from ekya.process import configure_torch

        configure_torch(int(cfg.threads))
        made = instantiate(cfg.learner)
        for config in part("space").values():
            made.check_config(config)
        # before any data is generated or tracking run begun (a {camera} template is read per camera later)
        check_checkpoint(getattr(made, "checkpoint", None))
        return made

    def stream_set() -> Any:
        from ekya.plans.packing import check_quanta

        out = _labelled_stream_set(cfg)
        # every camera needs a quantum of inference: refuse a cluster too small now, before base models train
        check_quanta(len(out.cameras), part("budget"))
        return out

    return {
        "seed": lambda: run_seed(cfg.seed),
        "window": lambda: window_settings(cfg),
        "windows": lambda: check_run_windows(cfg.dataset.windows),
        "budget": lambda: budget_from_config(_plain(cfg.cluster), part("window")),
        "scheduler": lambda: instantiate(cfg.scheduler),
        "space": space,
        "profiler": lambda: instantiate(cfg.profiler),
        "learner": learner,
        "base_key": lambda: _base_key(cfg, part("learner")),
        "stream_set": stream_set,
    }


def build_parts(cfg: DictConfig, names: Collection[str],
                before: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The named parts of a run (``window``, ``budget``, ``stream_set``, ...), built as a run builds them.

    Parts are built once each, in the builders' order; the parts they were built from come along.
    ``before(name)`` is called before each named part is built (progress names the slow ones).
    """
    built: dict[str, Any] = {}

    def part(name: str) -> Any:
        if name not in built:
            built[name] = builders[name]()
        return built[name]

    builders = _builders(cfg, part)
    for name in builders:
        if name in names:
            if before is not None and name not in built:
                before(name)
            part(name)
    return built


def build_runtime(cfg: DictConfig, before: Callable[[str], None] | None = None) -> tuple[Runtime, list[str]]:
    """The runtime with every part it takes, and the config groups those parts came from.

    ``before(name)`` is called before each part the runtime takes is built (progress names the slow ones).
    """
    factory = instantiate(cfg.runtime, _partial_=True)
    factory.func.check_settings(**factory.keywords)
    wanted = inspect.signature(factory.func).parameters
    built = build_parts(cfg, wanted, before)
    groups = list(dict.fromkeys(g for name in built for g in _GROUPS.get(name, ())))
    return factory(**{k: v for k, v in built.items() if k in wanted}), groups


def build_callbacks(cfg: DictConfig, quiet: bool = False) -> dict[str, Callback]:
    """The ``callbacks`` group's callbacks by name, plus ``tracking`` (unless null); quiet drops summary, progress."""
    out: dict[str, Callback] = {}
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None or (quiet and name in ("summary", "progress")):
            continue
        out[str(name)] = instantiate(node)
    if cfg.get("tracking") is not None:
        out["tracking"] = instantiate(cfg.tracking, **({"hint": False} if quiet else {}))
    for name, cb in out.items():
        if not isinstance(cb, Callback):
            raise EkyaError(f"callbacks.{name}: {type(cb).__name__} is not an ekya.callbacks.Callback; "
                            "subclass it (see ekya/execution/hooks.py)")
    return out


def _git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def saved_config(resume: Any, run_dir: Path | None = None) -> Path:
    """The config.yaml the run to resume saved at its start (in ``run_dir``, by default the ``resume`` folder)."""
    saved = Path(str(resume) if run_dir is None else run_dir) / "config.yaml"
    if not saved.exists():
        raise EkyaError(f"resume={resume}: no ekya run there ({saved} is missing); "
                        "pass the directory an interrupted run printed")
    return saved


def run_seed(value: Any) -> int:
    """``seed`` as the integer it must be."""
    try:
        seed = int(value)
        whole = not isinstance(value, bool) and float(value) == seed
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise EkyaError(f"seed={value!r}: must be a whole number, e.g. seed=0")
    return seed


def load_saved_config(path: Path) -> DictConfig:
    """A config.yaml a run saved, its parts' ``_target_`` names brought up to this version's (RENAMED_MODULES)."""
    return OmegaConf.create(renamed_targets(OmegaConf.to_container(OmegaConf.load(path)), RENAMED_MODULES))


def config_for(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """The resolved config of this run: saved at the first start, reloaded when resuming."""
    saved = run_dir / "config.yaml"
    if cfg.get("resume"):
        return load_saved_config(saved_config(cfg.resume, run_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    OmegaConf.save(resolved, saved)
    return resolved


def run_config(cfg: DictConfig, run_dir: Path, quiet: bool = False, skip_finished: bool = False) -> RunContext:
    """Build and run (or resume) one cell in ``run_dir``; the finished run (records, frame, summary).

    With ``skip_finished`` and MLflow tracking, a cell whose resolved config already has a FINISHED
    run in its experiment is not played: the returned run has ``skipped`` set and that run's metrics
    as its summary.
    """
    from ekya.sweeps import fingerprint

    run_dir = Path(run_dir)
    configure_logging(str(cfg.get("log_level", "warning")))
    resuming = bool(cfg.get("resume"))  # the saved config it reloads says resume: null
    cfg = config_for(cfg, run_dir)
    config_hash = fingerprint(OmegaConf.to_container(cfg, resolve=True))
    callbacks = build_callbacks(cfg, quiet)
    runtime, groups = build_runtime(cfg, before=preparing(callbacks, cfg))
    tracking = callbacks.get("tracking")
    if skip_finished and not resuming and hasattr(tracking, "finished_twin"):
        twin = tracking.finished_twin(runtime.source, config_hash)
        if twin is not None:
            runtime.close()
            return RunContext(run_dir=run_dir, name=twin.run_id, runtime=runtime, params={}, tags={},
                              summary=dict(twin.metrics), skipped=twin)
    params = {k: _plain(cfg[k]) for k in dict.fromkeys([*_ALWAYS, *groups]) if k in cfg}
    described = runtime.describe()
    accelerators = runtime.budget.accelerators  # the Budget this root built: the count's one owner
    # a measurement instrument (runtime.instrument) is never the shipped scheduler: its runs say so
    instrument = described.get(schema.INSTRUMENT, "none")
    who = runtime.scheduler.name if instrument in ("none", None) else f"{runtime.scheduler.name}-{instrument}"
    name = f"{runtime.source}-{who}-{accelerators}acc-seed{cfg.seed}"
    kind = type(runtime).__name__.removesuffix("Runtime").lower()
    tags = {schema.RUNTIME: kind, schema.SOURCE: runtime.source, schema.GIT_SHA: _git_sha(),
            schema.RUN_DIR: str(run_dir.resolve()), schema.SEED: str(cfg.seed), schema.CONFIG_HASH: config_hash,
            schema.ACCELERATORS: str(accelerators), **described}
    run = RunContext(run_dir=run_dir, name=name, runtime=runtime, params=params, tags=tags, callbacks=callbacks)
    return run_windows(runtime, run)
