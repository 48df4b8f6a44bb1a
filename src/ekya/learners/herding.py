"""iCaRL's exemplar selection: greedy herding on L2-normalised features, and the per-class memory update.

Herding (Rebuffi et al., Algorithm 4, the greedy form Mammoth and PyCIL use): the k-th exemplar of a
class is the candidate that brings the mean of the chosen exemplars closest to the mean of all the
class's normalised candidate features. It runs in float64 on the CPU, so ties (broken towards the
earlier candidate) and the selection do not depend on the device the features came from.

The memory update keeps at most ``memory // |classes seen|`` exemplars per class: a class present
in the job's pool is re-herded over its old exemplars and its new samples together (the Ekya
fork's rule, which suits classes that recur with a new appearance); a class absent from the pool
keeps the first exemplars of its herding order, so a vanished class is remembered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F


def normalise(features: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm (a zero row stays zero)."""
    return F.normalize(features, p=2, dim=1)


def herd(features: torch.Tensor, m: int) -> list[int]:
    """Indices of up to ``m`` rows of ``features`` (already normalised) in greedy herding order."""
    f = features.detach().to("cpu", torch.float64)
    n = len(f)
    m = min(int(m), n)
    if m <= 0:
        return []
    mu = f.mean(dim=0)
    sq = (f * f).sum(dim=1)
    total = torch.zeros_like(mu)
    taken = torch.zeros(n, dtype=torch.bool)
    order: list[int] = []
    for k in range(1, m + 1):
        # ||mu - (total + f_i)/k||^2 = const - (2/k) f_i.(mu - total/k) + |f_i|^2/k^2
        score = f @ (mu - total / k) - sq / (2 * k)
        score[taken] = -torch.inf
        i = int(torch.argmax(score))  # the first maximum: ties go to the earlier candidate
        order.append(i)
        taken[i] = True
        total += f[i]
    return order


def herding_flops(candidates: int, m: int, dim: int) -> float:
    """Multiply-adds herding spends choosing ``m`` of ``candidates`` (one matrix-vector product per pick), x2."""
    return 2.0 * dim * int(candidates) * min(int(m), int(candidates))


@dataclass(frozen=True)
class MemoryPick:
    """Which pool rows the new memory keeps (in class order, herding order within a class) and what herding cost."""

    rows: list[int]
    per_class: int
    flops: float


def pick_memory(labels: np.ndarray, in_old_memory: np.ndarray, present: set[int], features: torch.Tensor | None,
                memory: int, known: set[int] = frozenset()) -> MemoryPick:
    """The next exemplar memory over a pool of candidates (old exemplars and the job's new samples).

    labels: class of every pool row; in_old_memory: whether a row is an old exemplar (old exemplars
    come first in the pool, in their stored order); present: classes of the job's new samples;
    features: normalised pool features (needed only when some class is present); known: classes the
    lineage trained on before (they count as seen even when a tiny budget left them no exemplar).
    """
    labels = np.asarray(labels)
    seen = sorted(set(int(c) for c in np.unique(labels[in_old_memory])) | set(int(c) for c in present)
                  | set(int(c) for c in known))
    m = int(memory) // len(seen) if seen else 0
    rows: list[int] = []
    flops = 0.0
    for c in seen:
        if c in present:
            cand = np.nonzero(labels == c)[0]
            picked = herd(features[torch.as_tensor(cand)], m) if m > 0 else []
            rows.extend(int(cand[i]) for i in picked)
            flops += herding_flops(len(cand), m, features.shape[1])
        else:
            kept = np.nonzero((labels == c) & in_old_memory)[0][:m]  # empty for a known class with none left
            rows.extend(int(i) for i in kept)
    return MemoryPick(rows, m, flops)
