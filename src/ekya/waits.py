"""The bound on a wait for a service the user names (a Ray cluster, an MLflow server), read from the config."""

from __future__ import annotations

import math
from typing import Any

from ekya.errors import EkyaError


def timeout_of(key: str, value: Any) -> float:
    """A bound on a wait, from the config key ``key``: a finite number of seconds > 0."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = math.nan
    if isinstance(value, bool) or not (out > 0 and math.isfinite(out)):
        raise EkyaError(f"{key} must be a number of seconds > 0 (the longest wait for the service to answer), "
                        f"got {value!r}")
    return out
