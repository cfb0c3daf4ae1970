"""S3D (Xie et al., ECCV 2018) as torchvision implements and trained it (``torchvision/models/video/s3d.py``).

Separable Inception-v1: every 3x3x3 conv of I3D becomes a 1x3x3 spatial conv followed by a 3x1x1 temporal
conv, each with BatchNorm (eps 1e-3, momentum 1e-3) and ReLU. Module names and shapes are torchvision's
(``features.<i>``, ``branch0..3``), so its state dicts load after one rename: torchvision's classifier, a
1x1x1 ``Conv3d`` applied after ``AvgPool3d((2, 7, 7), stride 1)`` at every remaining position and then
averaged over T, H, W, is our ``nn.Linear`` ``fc`` applied to the mean of the pooled features — the same
logits, the conv being linear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidrec.models.layers import Triple, check_dropout
from vidrec.models.registry import KINETICS_MEAN, KINETICS_STD, register_model

REFERENCE = "torchvision models/video/s3d.py (Xie et al., ECCV 2018)"
#: stage (finetune.stage_of) of each ``features.<i>``: the stem, then output strides 4, 8, 16 and 32
_STAGES = (0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4)


class ConvBNReLU(nn.Sequential):
    """Conv3d (no bias), BatchNorm (eps 1e-3, momentum 1e-3), ReLU: torchvision's ``Conv3dNormActivation``."""

    def __init__(self, in_planes: int, out_planes: int, kernel: int | Triple = 1, stride: int | Triple = 1,
                 padding: int | Triple = 0) -> None:
        super().__init__(nn.Conv3d(in_planes, out_planes, kernel, stride, padding, bias=False),
                         nn.BatchNorm3d(out_planes, eps=1e-3, momentum=1e-3), nn.ReLU(inplace=True))


class SepConv(nn.Sequential):
    """A k x k spatial conv then a k x 1 x 1 temporal conv, both of stride s: ``TemporalSeparableConv``."""

    def __init__(self, in_planes: int, out_planes: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            ConvBNReLU(in_planes, out_planes, (1, kernel, kernel), (1, stride, stride),
                       (0, padding, padding)),
            ConvBNReLU(out_planes, out_planes, (kernel, 1, 1), (stride, 1, 1), (padding, 0, 0)),
        )


class SepInception(nn.Module):
    """Inception block, separable 3x3x3 convs: 1x1x1 | 1x1x1, sep 3 | 1x1x1, sep 3 | max pool, 1x1x1."""

    def __init__(self, in_planes: int, b0: int, b1_mid: int, b1: int, b2_mid: int, b2: int, b3: int) -> None:
        super().__init__()
        self.branch0 = ConvBNReLU(in_planes, b0)
        self.branch1 = nn.Sequential(ConvBNReLU(in_planes, b1_mid), SepConv(b1_mid, b1, 3, 1, 1))
        self.branch2 = nn.Sequential(ConvBNReLU(in_planes, b2_mid), SepConv(b2_mid, b2, 3, 1, 1))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, 1, 1), ConvBNReLU(in_planes, b3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class S3D(nn.Module):
    """S3D: ``features`` (torchvision's layers and indices), average pool 2x7x7 at stride 1, mean, ``fc``.

    The pooling window shrinks to the feature map where it is smaller (clips under 14 frames or 224 px, which
    torchvision's network refuses). Dropout sits before ``fc`` (torchvision's default is 0.2, ours 0.0); in
    training torchvision drops pooled features at each position, here their mean.
    """

    def __init__(self, num_classes: int = 400, dropout: float = 0.0) -> None:
        super().__init__()
        self.features = nn.Sequential(
            SepConv(3, 64, 7, 2, 3),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            ConvBNReLU(64, 64),
            SepConv(64, 192, 3, 1, 1),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            SepInception(192, 64, 96, 128, 16, 32, 32),
            SepInception(256, 128, 128, 192, 32, 96, 64),
            nn.MaxPool3d(3, 2, 1),
            SepInception(480, 192, 96, 208, 16, 48, 64),
            SepInception(512, 160, 112, 224, 24, 64, 64),
            SepInception(512, 128, 128, 256, 24, 64, 64),
            SepInception(512, 112, 144, 288, 32, 64, 64),
            SepInception(528, 256, 160, 320, 32, 128, 128),
            nn.MaxPool3d(2, 2),
            SepInception(832, 256, 160, 320, 32, 128, 128),
            SepInception(832, 384, 192, 384, 48, 128, 128),
        )
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        # torchvision's (2, 7, 7) window, shrunk to a smaller map; ints, so that ONNX gets a constant kernel
        window = [min(k, int(size)) for k, size in zip((2, 7, 7), x.shape[2:])]
        x = F.avg_pool3d(x, window, stride=1).mean((2, 3, 4))
        return self.fc(self.dropout(x))

    def stage_of(self, name: str) -> int:
        """Stage of a parameter name for freezing: ``features.<i>`` by output stride (as Inception-I3D's)."""
        parts = name.split(".")
        return _STAGES[int(parts[1])] if parts[0] == "features" and len(parts) > 1 else 0


@register_model("s3d", family="s3d", reference=REFERENCE, frames=128, size=224, mean=KINETICS_MEAN,
                std=KINETICS_STD)
def s3d(num_classes: int, dropout: float = 0.0) -> S3D:
    """S3D with torchvision's layers (8.3 M parameters at 400 classes)."""
    return S3D(num_classes, dropout)
