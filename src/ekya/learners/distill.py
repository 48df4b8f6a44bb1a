"""Knowledge distillation: the soft-target term LwF and iCaRL add to their classification loss."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(p_teacher || p_student) of the logits softened at ``temperature``, over all outputs, batch mean.

    Not multiplied by T^2 (Hinton's convention): Avalanche's, Mammoth's and PyCIL's LwF leave it
    out, so their published weights (lambda 1, T 2) mean the same here. The teacher is a constant:
    no gradient flows into it.
    """
    t = float(temperature)
    if t <= 0:
        raise ValueError(f"kd_loss: temperature must be > 0, got {temperature}")
    log_p_student = F.log_softmax(student_logits / t, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / t, dim=1)
    return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
