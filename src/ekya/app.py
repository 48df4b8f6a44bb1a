"""The Hydra entry point (``python -m ekya``): compose the config, build the run, play it, end it cleanly."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

#: the folders this process created for its runs and sweeps (absolute path -> the missing parents it
#: created too, deepest first): only these may be removed again, never a folder another process made
_CREATED: dict[str, list[str]] = {}
#: overrides a resumed run honours: the logging is set up from the command line before the saved config loads
RESUME_KEEPS = ("log_level",)


def new_dir(path: str) -> str:
    """Create a fresh folder named ``path``, or ``path-1``, ``path-2`` ... when that exists, and return its name.

    ``os.mkdir`` fails if the folder exists, so two processes that start in the same second (their
    timestamps equal) never get the same folder.
    """
    parent = Path(path).parent
    missing = [os.path.abspath(p) for p in [parent, *parent.parents] if not p.exists()]
    n, retried = 0, False
    while True:
        candidate = path if n == 0 else f"{path}-{n}"
        try:
            os.mkdir(candidate)
        except FileExistsError:
            n += 1
            continue
        except FileNotFoundError:
            if retried:
                raise
            # the parents are not there yet (or no more: another process's failed run just removed them)
            parent.mkdir(parents=True, exist_ok=True)
            retried = True
            continue
        _CREATED[os.path.abspath(candidate)] = missing
        return candidate


def _run_dir(resume: str | None, fresh: str) -> str:
    """A resumed run keeps writing into its own directory; a new run gets a folder of its own (``new_dir``)."""
    return str(resume) if resume not in (None, "", "None", "null") else new_dir(fresh)


def discard_dir(path: Path | str, keep_if: str | None = None) -> bool:
    """Remove a folder this process created, and the parents it created that are left empty.

    Nothing happens to a folder another process (or the user) made, or to one holding ``keep_if``.
    Returns whether the folder was removed.
    """
    key = os.path.abspath(path)
    if key not in _CREATED or (keep_if is not None and os.path.exists(os.path.join(key, keep_if))):
        return False
    shutil.rmtree(key, ignore_errors=True)
    for parent in _CREATED.pop(key):
        try:
            os.rmdir(parent)
        except OSError:  # not empty (another run's folder is there) or already gone
            break
    return not os.path.exists(key)


@atexit.register
def _drop_unused_dirs() -> None:
    """A folder picked but never written to (``--cfg all --resolve``, a start that failed) is not left behind."""
    for key in reversed(list(_CREATED)):  # the latest first: it may sit in parents an earlier one created
        if os.path.isdir(key) and not os.listdir(key):
            discard_dir(key)


def register_resolvers() -> None:
    """The resolvers ekya's configs use: the folder of a fresh or resumed run, and a new sweep folder.

    Cached per config (OmegaConf copies the cache to a sweep's cells and pickles it with a config), so a
    folder is picked once however often the interpolation is read.
    """
    if not OmegaConf.has_resolver("ekya_run_dir"):
        OmegaConf.register_new_resolver("ekya_run_dir", _run_dir, use_cache=True)
    if not OmegaConf.has_resolver("ekya_new_dir"):
        OmegaConf.register_new_resolver("ekya_new_dir", new_dir, use_cache=True)


register_resolvers()


def _is_null(value: object) -> bool:
    return value in (None, "", "None", "null")


def check_resume_alone(argv: Sequence[str]) -> None:
    """``resume=DIR`` plays the run with the config it saved: refuse the overrides it would silently ignore."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from ekya.composition import saved_config
    from ekya.errors import EkyaError

    overrides = OverridesParser.create().parse_overrides(list(argv))
    resume = next((o for o in overrides if o.key_or_group == "resume"), None)
    if resume is None or _is_null(resume.value()):
        return
    ignored = [o.input_line for o in overrides if o is not resume and o.key_or_group not in RESUME_KEEPS]
    if ignored:
        them = "it" if len(ignored) == 1 else "them"
        raise EkyaError(f"resume={resume.value()} continues the run with the config it was started with, so "
                        f"{' '.join(ignored)} would be ignored; drop {them} (only {', '.join(RESUME_KEEPS)} "
                        f"applies to a resumed run), or start a new run with {them}")
    saved_config(str(resume.value()))


def check_output_root(root: str) -> None:
    """``output_root`` must be a folder runs can be created in (a probe folder is made there and removed)."""
    from ekya.errors import EkyaError

    path = Path(root)
    existing = next(p for p in [path, *path.parents] if p.exists())  # "." or "/" at the latest
    if not existing.is_dir():
        raise EkyaError(f"output_root={root}: {existing} is a file, not a folder; "
                        "set output_root to a folder you can write to")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".ekya-probe-", dir=existing))
    except OSError as e:
        raise EkyaError(f"output_root={root}: cannot create a run folder in {existing} ({e.strerror}); "
                        "set output_root to a folder you can write to") from None


def _misplaced_key_hint(message: str) -> str:
    """``; the key is cluster.delta`` when a key Hydra could not override lives under another group."""
    import re

    from ekya.hydra_compose import compose_config

    typed = re.search(r"override '([\w.]+)'", message)
    if typed is None or "." not in typed.group(1):
        return ""
    group, _, leaf = typed.group(1).partition(".")
    defaults = compose_config([])
    found = [f"{name}.{leaf}" for name, node in defaults.items()
             if name != group and isinstance(node, DictConfig) and leaf in node]
    return f"; the key is {' or '.join(found)}" if found else ""


#: config groups a run can do without (``~GROUP``)
OPTIONAL_GROUPS = ("tracking",)


def check_null_groups(argv: Sequence[str]) -> None:
    """``GROUP=null`` for a config group (Hydra raises a bare ValueError for it): one line saying how to drop it."""
    from importlib.resources import files

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from ekya.errors import EkyaError

    conf = files("ekya.conf")
    for o in OverridesParser.create().parse_overrides(list(argv)):
        group = o.key_or_group
        if o.is_delete() or o.value() is not None or not conf.joinpath(group).is_dir():
            continue
        options = sorted(p.name.removesuffix(".yaml") for p in conf.joinpath(group).iterdir()
                         if p.name.endswith(".yaml"))
        fix = f"to run without it write ~{group}" if group in OPTIONAL_GROUPS else "choose one of them"
        raise EkyaError(f"{o.input_line}: {group} is a config group, chosen by name ({', '.join(options)}); {fix}")


def check_overrides(argv: list[str]) -> None:
    """Compose a plain run's overrides once up front, so a bad key, group or value is one line and exit 2.

    Besides what composing checks: ``resume=`` comes alone, ``seed`` is an integer and ``output_root``
    is writable, all before anything is written. Hydra reports its own composition errors over several
    lines with exit status 1; flags (``-m``, ``--cfg``, ``--help`` ...) are left to Hydra.
    """
    if any(a.startswith("-") for a in argv):
        return
    from hydra.errors import HydraException

    from ekya.composition import run_seed
    from ekya.errors import EkyaError
    from ekya.hydra_compose import compose_config

    try:
        check_resume_alone(argv)
        check_null_groups(argv)
        cfg = compose_config(argv)
        if _is_null(cfg.get("resume")):
            run_seed(cfg.seed)
            if not any(a.split("=", 1)[0].lstrip("+") == "hydra.run.dir" for a in argv):
                check_output_root(str(cfg.output_root))
    except HydraException as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"ekya: error: {first}{_misplaced_key_hint(first)} (python -m ekya --help lists the groups and keys)",
              file=sys.stderr)
        sys.exit(2)
    except EkyaError as e:
        print(f"ekya: error: {e}", file=sys.stderr)
        sys.exit(2)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Run one cell and return its mean window accuracy (what sweepers optimise).

    A user error prints one line and exits with status 2; Ctrl-C prints the resume command and
    exits with 130. Either way, and on any other failure, the MLflow runs are ended (KILLED or FAILED).
    A fresh run that fails before its first window is checkpointed leaves no folder behind (nothing in
    it could be resumed). In a multirun a failed cell does not stop the sweep: it prints its error,
    leaves its status (ekya.sweeps) and returns NaN; the sweep's report lists it and the sweep exits
    with status 1. A multirun cell whose config already FINISHED in MLflow is skipped (``skip_finished``).
    """
    import math
    import traceback

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from ekya.callbacks.checkpoint import STATE_FILE
    from ekya.composition import run_config
    from ekya.errors import user_error
    from ekya.sweeps import CellStatus, write_cell

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    overrides = list(hydra_cfg.overrides.task)
    try:
        run = run_config(cfg, run_dir, skip_finished=multirun and bool(cfg.get("skip_finished", False)))
    except KeyboardInterrupt:
        print(f"\nekya: interrupted; resume with:  python -m ekya resume={run_dir}", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # user errors become one line; anything else is a bug to show
        message = user_error(e)
        if multirun:
            if message is None:
                traceback.print_exc()
            error = message or f"{type(e).__name__}: {e}"
            print(f"ekya: error in cell {' '.join(overrides)}: {error}", file=sys.stderr)
            write_cell(run_dir, CellStatus("FAILED", overrides, error=error))
            return math.nan
        discard_dir(run_dir, keep_if=STATE_FILE)  # a resumed run's folder was not created here: it stays
        if message is None:
            raise
        print(f"ekya: error: {message}", file=sys.stderr)
        sys.exit(2)
    mean = float(run.summary.get("mean_accuracy", math.nan))
    if run.skipped is not None:
        print(f"ekya: skipped: this config FINISHED before as MLflow run {run.skipped.run_id} in experiment "
              f"{run.skipped.experiment!r} (mean_accuracy {mean:.4f}); skip_finished=false plays it again")
    if multirun:
        tracking = run.callbacks.get("tracking")
        run_id = run.skipped.run_id if run.skipped is not None else getattr(getattr(tracking, "tracker", None),
                                                                            "parent_id", None)
        write_cell(run_dir, CellStatus("SKIPPED" if run.skipped is not None else "FINISHED", overrides, mean, run_id))
    return mean
