"""The settings of a learner's opt-in parts (``learner.replay``, ``learner.lwf``, ``learner.icarl``), checked once.

Each is a frozen dataclass built from its YAML mapping with ``of``: unknown keys, values of the wrong
type and values out of range raise EkyaError naming the key, before any job runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ekya.errors import EkyaError
from ekya.learners.replay import BUFFERS

#: The losses ``learner.icarl.loss`` accepts (``ekya.learners.icarl_module`` defines each).
LOSSES = ("ce_kd", "bce", "bce_adaptive")


def _known(cls: type, key: str, raw: Mapping[str, Any] | None, takes: object) -> dict[str, Any]:
    """``raw`` as a dict; EkyaError when it has a key ``cls`` has no field for."""
    given = dict(raw or {})
    unknown = sorted(set(given) - {f.name for f in fields(cls)})
    if unknown:
        raise EkyaError(f"learner.{key}: unknown key(s) {unknown}; it takes {takes}")
    return given


@dataclass(frozen=True)
class ReplaySettings:
    """``learner.replay``: the buffer kind ("none": off), its size in samples and its share of each batch."""

    buffer: str = "none"
    memory: int = 200
    ratio: float = 0.5

    def __post_init__(self) -> None:
        buffer = str(self.buffer)
        if buffer not in BUFFERS:
            raise EkyaError(f"learner.replay.buffer={buffer!r}: choose one of {list(BUFFERS)}")
        try:
            memory, ratio = int(self.memory), float(self.ratio)
        except (TypeError, ValueError):
            raise EkyaError(f"learner.replay: memory={self.memory!r} must be an integer and ratio={self.ratio!r} "
                            "a number") from None
        if memory < 1:
            raise EkyaError(f"learner.replay.memory={memory}: must be at least 1 sample")
        if not 0.0 < ratio < 1.0:
            raise EkyaError(f"learner.replay.ratio={ratio}: the buffer's share of each batch must be in (0, 1); "
                            "0.5 mixes 1:1")
        object.__setattr__(self, "buffer", buffer)
        object.__setattr__(self, "memory", memory)
        object.__setattr__(self, "ratio", ratio)

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> ReplaySettings:
        """The settings a ``learner.replay`` mapping (None: the defaults) describes."""
        return cls(**_known(cls, "replay", raw, "buffer, memory and ratio"))

    @property
    def on(self) -> bool:
        """Whether jobs replay a buffer."""
        return self.buffer != "none"


@dataclass(frozen=True)
class LwfSettings:
    """``learner.lwf``: the distillation term's weight (0: off) and softmax temperature."""

    weight: float = 0.0
    temperature: float = 2.0

    def __post_init__(self) -> None:
        try:
            weight, temperature = float(self.weight), float(self.temperature)
        except (TypeError, ValueError):
            raise EkyaError(f"learner.lwf: weight={self.weight!r} and temperature={self.temperature!r} must be "
                            "numbers") from None
        if not (weight >= 0 and math.isfinite(weight)):
            raise EkyaError(f"learner.lwf.weight={weight}: must be >= 0 (0 turns distillation off)")
        if not (temperature > 0 and math.isfinite(temperature)):
            raise EkyaError(f"learner.lwf.temperature={temperature}: must be > 0")
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "temperature", temperature)

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> LwfSettings:
        """The settings a ``learner.lwf`` mapping (None: the defaults) describes."""
        return cls(**_known(cls, "lwf", raw, "weight and temperature"))

    @property
    def on(self) -> bool:
        """Whether jobs distil from the model they start from."""
        return self.weight > 0


@dataclass(frozen=True)
class ICaRLSettings:
    """``learner.icarl``: the exemplar budget, the loss, and the distillation weight and temperature."""

    memory: int = 200
    loss: str = "ce_kd"
    kd_weight: float = 1.0
    temperature: float = 2.0

    def __post_init__(self) -> None:
        try:
            memory, kd_weight, temperature = int(self.memory), float(self.kd_weight), float(self.temperature)
        except (TypeError, ValueError):
            got = {f.name: getattr(self, f.name) for f in fields(self)}
            raise EkyaError(f"learner.icarl: memory must be an integer and kd_weight, temperature numbers; "
                            f"got {got}") from None
        loss = str(self.loss)
        if loss not in LOSSES:
            raise EkyaError(f"learner.icarl.loss={loss!r}: choose one of {list(LOSSES)}")
        if memory < 1:
            raise EkyaError(f"learner.icarl.memory={memory}: the exemplar budget must be at least 1 sample")
        if kd_weight < 0:
            raise EkyaError(f"learner.icarl.kd_weight={kd_weight}: must be >= 0")
        if not temperature > 0:
            raise EkyaError(f"learner.icarl.temperature={temperature}: must be > 0")
        for name, value in (("memory", memory), ("loss", loss), ("kd_weight", kd_weight), ("temperature", temperature)):
            object.__setattr__(self, name, value)

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> ICaRLSettings:
        """The settings a ``learner.icarl`` mapping (None: the defaults) describes."""
        return cls(**_known(cls, "icarl", raw, sorted(f.name for f in fields(cls))))
