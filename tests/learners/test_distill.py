"""The distillation term: zero when the student matches the teacher, the KL of softened outputs otherwise."""

from __future__ import annotations

import torch

from ekya.learners.distill import kd_loss


def test_kd_loss_is_the_batch_mean_kl_of_softened_outputs() -> None:
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g)
    p, q = torch.softmax(teacher / 2.0, dim=1), torch.softmax(student / 2.0, dim=1)
    expected = (p * (p.log() - q.log())).sum(dim=1).mean()
    assert torch.allclose(kd_loss(student, teacher, 2.0), expected, atol=1e-6)
    assert float(kd_loss(teacher, teacher, 2.0)) < 1e-7
