"""Process-wide state, set in one place by the entry points (never on import of a library module)."""

from __future__ import annotations

import logging
import os
import sys

#: ``log_level`` values, quietest last
LEVELS = ("debug", "info", "warning", "error")
#: libraries whose own handlers would print set-up chatter at INFO
_CHATTY = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "mlflow", "alembic", "sqlalchemy")


#: the variables set_env_policies sets (a launcher that starts cells in processes of its own passes them on)
POLICY_VARS = ("OMP_WAIT_POLICY",)


def set_env_policies() -> None:
    """Environment policies that must be set before torch loads OpenMP.

    Idle OpenMP threads sleep instead of spinning: on a busy or shared machine spinning threads
    starve each other and training slows down many times over. A value the user set wins.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def env_policies() -> dict[str, str]:
    """This process's policy variables (set_env_policies applied), for a worker that does not inherit them.

    A Ray cluster's workers get the environment of ``ray start``, not the driver's: the launcher
    sets these in the worker before the cell (and so torch) starts.
    """
    set_env_policies()
    return {name: os.environ[name] for name in POLICY_VARS if name in os.environ}


def configure_logging(level: str = "warning") -> None:
    """Show ekya's log and Python warnings at ``level`` and above on stderr (``error`` hides warnings)."""
    name = str(level).lower()
    if name not in LEVELS:
        from ekya.errors import EkyaError

        raise EkyaError(f"log_level={level!r}: use one of {list(LEVELS)}")
    value = getattr(logging, name.upper())
    root = logging.getLogger()
    if not any(getattr(h, "_ekya", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
        handler._ekya = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(value)
    # warnings go through logging ("py.warnings"), so the same level shows or hides them
    logging.captureWarnings(True)
    for lib in _CHATTY:
        logging.getLogger(lib).setLevel(max(value, logging.WARNING))


def configure_torch(threads: int, deterministic: bool = True) -> None:
    """Torch intra-op threads for this process, and deterministic algorithms switched on once."""
    import torch

    if int(threads) < 1:
        from ekya.errors import EkyaError

        raise EkyaError(f"threads={threads}: must be an integer >= 1 (torch intra-op threads)")
    torch.set_num_threads(int(threads))
    if deterministic:
        # cuBLAS needs a fixed workspace for reproducible results on CUDA
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
