"""Which torch device a learner trains and infers on: ``learner.accelerator`` auto | cpu | cuda."""

from __future__ import annotations

import torch

from ekya.errors import EkyaError

ACCELERATORS = ("auto", "cpu", "cuda")


def resolve_accelerator(accelerator: str, key: str = "learner.accelerator") -> torch.device:
    """The device for ``accelerator`` ("auto": cuda if torch sees a CUDA device, else cpu); EkyaError names ``key``."""
    value = str(accelerator)
    if value not in ACCELERATORS:
        raise EkyaError(f"{key}={value!r} is not known; choose one of {list(ACCELERATORS)}")
    if value == "auto":
        value = "cuda" if torch.cuda.is_available() else "cpu"
    elif value == "cuda" and not torch.cuda.is_available():
        raise EkyaError(f"{key}=cuda but torch sees no CUDA device; set {key}=auto or {key}=cpu, "
                        "or install a CUDA build of torch on a machine with a GPU")
    if value == "cuda":  # indexed, so a model's parameters compare equal to it
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
