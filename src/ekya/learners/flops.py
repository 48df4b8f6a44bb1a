"""Per-sample FLOPs of an edge model, measured once per architecture with torch's FlopCounterMode.

Counts what FlopCounterMode counts (convolutions and matrix products, forward and backward; not
element-wise ops), so a job's cost is a deterministic function of its architecture and the
number of samples it pushed through each pass, independent of the machine and its load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from ekya.learners.model import EdgeModel

_BATCH = 2  # FLOPs of these layers are linear in the batch; 2 keeps BatchNorm's train mode valid


@dataclass(frozen=True)
class SampleFlops:
    """FLOPs per sample of each pass a retraining job runs."""

    backbone_forward: float
    head_forward: float
    head_train: float  # forward + backward of the head alone (frozen backbone, cached features)
    full_train: float  # forward + backward of backbone and head (no input gradient)

    @property
    def forward(self) -> float:
        """One inference pass through the whole model."""
        return self.backbone_forward + self.head_forward


def _count(fn: Callable[[], object]) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops()) / _BATCH


@cache
def sample_flops(backbone: str, hidden: int, num_classes: int, image_size: int) -> SampleFlops:
    """Measure (once per architecture) the per-sample FLOPs of every pass."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = EdgeModel(backbone, hidden, num_classes, image_size)
    x = torch.zeros((_BATCH, 3, image_size, image_size), dtype=torch.uint8)
    y = torch.zeros(_BATCH, dtype=torch.long)
    model.eval()
    with torch.no_grad():
        bb = _count(lambda: model.features(x))
        feats = model.features(x)
        hf = _count(lambda: model.head(feats))

    def head_step() -> None:
        torch.nn.functional.cross_entropy(model.head(feats), y).backward()

    def full_step() -> None:
        torch.nn.functional.cross_entropy(model(x), y).backward()

    model.train()
    ht = _count(head_step)
    ft = _count(full_step)
    return SampleFlops(bb, hf, ht, ft)
