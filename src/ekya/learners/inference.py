"""Running a network over a tensor of samples without training it: in chunks, in eval mode, without gradients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def batched(fn: nn.Module | Callable[[torch.Tensor], Any], x: torch.Tensor, batch: int) -> torch.Tensor:
    """Apply ``fn`` to ``x`` in chunks of ``batch`` and concatenate (bounded memory on large tables)."""
    if len(x) == 0:
        with torch.no_grad():
            return fn(torch.zeros((1, *x.shape[1:]), dtype=x.dtype, device=x.device))[:0]
    return torch.cat([fn(x[i:i + batch]) for i in range(0, len(x), batch)])


@contextmanager
def serving(net: nn.Module) -> Iterator[nn.Module]:
    """``net`` in eval mode without gradients for the block; its own mode is put back after."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            yield net
    finally:
        net.train(was_training)
