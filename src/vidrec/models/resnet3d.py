"""3D-ResNets and 3D-ResNeXt (Hara et al., CVPR 2018; kenshohara/3D-ResNets-PyTorch).

Module names follow the released checkpoints (conv1, bn1, layer1..4 with conv1/bn1/conv2/bn2[/conv3/bn3]
and downsample.0/1, fc) in both the 2018 and the 2020 code: a 7x7x7 conv1 with stride (1, 2, 2) and
padding 3, BN, ReLU, a 3x3x3 max pool with stride 2 in time and space (``no_max_pool=False``), then
the four stages; shortcut "A" is a zero-padded, strided identity, "B" a 1x1x1 conv + BN.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vidrec.models.layers import Bottleneck, check_dropout, conv3d, init_resnet_weights, projection_shortcut
from vidrec.models.registry import KENSHOHARA_MEAN, KENSHOHARA_STD, register_model

REFERENCE = "kenshohara/3D-ResNets-PyTorch (Hara et al., CVPR 2018)"


class ZeroPadShortcut(nn.Module):
    """Shortcut "A": strided subsampling of the identity, new channels zero-filled (no parameters)."""

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.extra_planes = out_planes - in_planes
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        return F.pad(x[:, :, ::s, ::s, ::s], (0, 0, 0, 0, 0, 0, 0, self.extra_planes))


class BasicBlock(nn.Module):
    """Two 3x3x3 convs with a residual (ResNet-10/18/34)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3d(in_planes, planes, 3, stride)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3d(planes, planes, 3)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


# kind -> (expansion, builder(in_planes, planes, stride, downsample, cardinality) -> block)
BlockBuilder = Callable[[int, int, int, "nn.Module | None", int], nn.Module]
_BLOCKS: dict[str, tuple[int, BlockBuilder]] = {
    "basic": (1, lambda i, p, s, d, c: BasicBlock(i, p, s, d)),
    "bottleneck": (4, lambda i, p, s, d, c: Bottleneck(i, p, 4 * p, s, d)),
    "resnext": (2, lambda i, p, s, d, c: Bottleneck(i, c * p // 32, 2 * p, s, d, groups=c)),
}


class ResNet3D(nn.Module):
    """kenshohara's 3D-ResNet / ResNeXt; ``block`` is ``basic``, ``bottleneck`` or ``resnext``."""

    def __init__(self, block: str, layers: list[int], num_classes: int = 400,
                 widths: tuple[int, ...] = (64, 128, 256, 512), shortcut_type: str = "B",
                 cardinality: int = 32, conv1_t_size: int = 7, conv1_t_stride: int = 1,
                 no_max_pool: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        if shortcut_type not in ("A", "B"):
            raise ValueError(f"shortcut_type must be 'A' or 'B', got {shortcut_type!r}")
        self._expansion, self._builder = _BLOCKS[block]
        self._shortcut_type = shortcut_type
        self._cardinality = cardinality
        self._in_planes = 64
        self.conv1 = nn.Conv3d(3, 64, (conv1_t_size, 7, 7), (conv1_t_stride, 2, 2), (conv1_t_size // 2, 3, 3),
                               bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if no_max_pool else nn.MaxPool3d(3, 2, 1)
        self.layer1 = self._make_layer(widths[0], layers[0], 1)
        self.layer2 = self._make_layer(widths[1], layers[1], 2)
        self.layer3 = self._make_layer(widths[2], layers[2], 2)
        self.layer4 = self._make_layer(widths[3], layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.fc = nn.Linear(widths[3] * self._expansion, num_classes)
        init_resnet_weights(self)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        out_planes = planes * self._expansion
        downsample = None
        if stride != 1 or self._in_planes != out_planes:
            downsample = (ZeroPadShortcut(self._in_planes, out_planes, stride) if self._shortcut_type == "A"
                          else projection_shortcut(self._in_planes, out_planes, stride))
        layers = [self._builder(self._in_planes, planes, stride, downsample, self._cardinality)]
        self._in_planes = out_planes
        layers += [self._builder(out_planes, planes, 1, None, self._cardinality) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


_DEPTHS = {
    10: ("basic", [1, 1, 1, 1], "A"),
    18: ("basic", [2, 2, 2, 2], "A"),
    34: ("basic", [3, 4, 6, 3], "A"),
    50: ("bottleneck", [3, 4, 6, 3], "B"),
    101: ("bottleneck", [3, 4, 23, 3], "B"),
    152: ("bottleneck", [3, 8, 36, 3], "B"),
    200: ("bottleneck", [3, 24, 36, 3], "B"),
}


def _register_depth(depth: int) -> None:
    block, layers, default_shortcut = _DEPTHS[depth]

    def builder(num_classes: int, dropout: float = 0.0, shortcut_type: str = default_shortcut,
                conv1_t_size: int = 7, conv1_t_stride: int = 1, no_max_pool: bool = False) -> ResNet3D:
        return ResNet3D(block, layers, num_classes, shortcut_type=shortcut_type, conv1_t_size=conv1_t_size,
                        conv1_t_stride=conv1_t_stride, no_max_pool=no_max_pool, dropout=dropout)

    builder.__name__ = builder.__qualname__ = f"resnet3d_{depth}"
    builder.__doc__ = f"3D-ResNet-{depth} (shortcut {default_shortcut} by default, as released for Kinetics)."
    register_model(f"resnet3d_{depth}", family="resnet3d", reference=REFERENCE,
                   mean=KENSHOHARA_MEAN, std=KENSHOHARA_STD)(builder)


for _depth in _DEPTHS:
    _register_depth(_depth)


@register_model("resnext3d_101", family="resnet3d", reference=REFERENCE, mean=KENSHOHARA_MEAN,
                std=KENSHOHARA_STD)
def resnext3d_101(num_classes: int, dropout: float = 0.0, shortcut_type: str = "B", cardinality: int = 32,
                  conv1_t_size: int = 7, conv1_t_stride: int = 1, no_max_pool: bool = False) -> ResNet3D:
    """3D-ResNeXt-101 (cardinality 32, widths 128-1024, expansion 2), as released for Kinetics."""
    return ResNet3D("resnext", [3, 4, 23, 3], num_classes, widths=(128, 256, 512, 1024),
                    shortcut_type=shortcut_type, cardinality=cardinality, conv1_t_size=conv1_t_size,
                    conv1_t_stride=conv1_t_stride, no_max_pool=no_max_pool, dropout=dropout)
