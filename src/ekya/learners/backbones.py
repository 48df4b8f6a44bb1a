"""Backbones (feature extractors) and the classification head, all built from scratch (no downloads).

Every backbone maps a normalised (n, 3, S, S) float batch to (n, feature_dim) features:

- ``resnet18``, ``resnet50``, ``resnet101``: torchvision ResNets with ``weights=None`` and the
  ImageNet stem (the paper's backbones; at 32 px their stem leaves an 8x8 map, 1x1 after layer4);
- ``mobilenet_v3_small``: torchvision MobileNetV3-small, ``weights=None``;
- ``resnet10_w16``: the CPU default, a ResNet-10 (one torchvision BasicBlock per stage) at widths
  16/32/64/128 with a 3x3 stride-1 stem for small inputs (no max-pool below 64 px): about 32 MFLOPs
  per 32 px image, ~10x the training throughput of resnet18 at the same size on a CPU.

The head is Linear(feature_dim -> hidden) + ReLU + Linear(hidden -> classes) (the original had no
non-linearity between its two Linears, which makes them one linear map).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

from ekya.errors import EkyaError


class NarrowResNet(nn.Module):
    """A small ResNet of torchvision BasicBlocks with a stem suited to small images."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128), blocks: tuple[int, ...] = (1, 1, 1, 1),
                 image_size: int = 32) -> None:
        super().__init__()
        w0 = widths[0]
        # Small inputs keep full resolution through the stem (a 7x7/2 conv + max-pool would leave
        # 8x8 of a 32 px crop before the first block); larger inputs get the usual /4 reduction.
        small = image_size <= 64
        stem: list[nn.Module] = [nn.Conv2d(3, w0, 3, 1 if small else 2, 1, bias=False), nn.BatchNorm2d(w0),
                                 nn.ReLU(inplace=True)]
        if not small:
            stem.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem)
        layers: list[nn.Module] = []
        inp = w0
        for stage, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                stride = 2 if (j == 0 and stage > 0) else 1
                down = None
                if stride != 1 or inp != w:
                    down = nn.Sequential(nn.Conv2d(inp, w, 1, stride, bias=False), nn.BatchNorm2d(w))
                layers.append(BasicBlock(inp, w, stride, down))
                inp = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = inp
        for m in self.modules():  # the initialisation torchvision's ResNet uses
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.layers(self.stem(x))), 1)


def _torchvision_resnet(fn: Callable[..., nn.Module]) -> Callable[[int], tuple[nn.Module, int]]:
    def build(image_size: int) -> tuple[nn.Module, int]:
        m = fn(weights=None)
        dim = m.fc.in_features
        m.fc = nn.Identity()
        return m, dim
    return build


def _mobilenet_v3_small(image_size: int) -> tuple[nn.Module, int]:
    m = torchvision.models.mobilenet_v3_small(weights=None)
    dim = m.classifier[0].in_features
    m.classifier = nn.Identity()
    return m, dim


def _resnet10_w16(image_size: int) -> tuple[nn.Module, int]:
    m = NarrowResNet((16, 32, 64, 128), (1, 1, 1, 1), image_size)
    return m, m.out_features


BACKBONES: dict[str, Callable[[int], tuple[nn.Module, int]]] = {
    "resnet10_w16": _resnet10_w16,
    "resnet18": _torchvision_resnet(torchvision.models.resnet18),
    "resnet50": _torchvision_resnet(torchvision.models.resnet50),
    "resnet101": _torchvision_resnet(torchvision.models.resnet101),
    "mobilenet_v3_small": _mobilenet_v3_small,
}


def build_backbone(name: str, image_size: int) -> tuple[nn.Module, int]:
    """A freshly initialised backbone (uses torch's global RNG) and its feature width."""
    if name not in BACKBONES:
        raise EkyaError(f"backbone {name!r} is not known; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name](int(image_size))


def build_head(feature_dim: int, hidden: int, num_classes: int) -> nn.Sequential:
    """Linear(feature_dim -> hidden) + ReLU + Linear(hidden -> num_classes)."""
    if int(hidden) < 1:
        raise EkyaError(f"hidden={hidden}: the head's hidden width must be >= 1")
    return nn.Sequential(nn.Linear(feature_dim, int(hidden)), nn.ReLU(inplace=True),
                         nn.Linear(int(hidden), num_classes))
