"""R3D, MC3 and R(2+1)D: one ``VideoResNet`` class, variants as small builder functions.

Module names and shapes follow torchvision's ``models/video/resnet.py`` (stem, layer1..4, avgpool, fc),
so torchvision's state dicts load with ``strict=True``. ``r2plus1d_34`` follows VMZ / ig65m-pytorch,
which computes the (2+1)D mid-planes per conv instead of once per block.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from vidrec.models.layers import DropPath, check_dropout, init_resnet_weights
from vidrec.models.registry import register_model

ConvBuilder = Callable[..., nn.Module]
TORCHVISION_REF = "torchvision models/video/resnet.py (Tran et al., CVPR 2018)"


def r2plus1d_mid_planes(in_planes: int, out_planes: int) -> int:
    """Mid-planes of a (2+1)D conv matching a 3x3x3 conv's parameter count (Tran et al. 2018)."""
    return (in_planes * out_planes * 3 * 3 * 3) // (in_planes * 3 * 3 + 3 * out_planes)


class Conv3DSimple(nn.Conv3d):
    """Full 3x3x3 convolution."""

    def __init__(self, in_planes: int, out_planes: int, mid_planes: int | None = None, stride: int = 1) -> None:
        super().__init__(in_planes, out_planes, (3, 3, 3), stride, (1, 1, 1), bias=False)

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return (stride, stride, stride)


class Conv3DNoTemporal(nn.Conv3d):
    """1x3x3 convolution (MC3's upper layers): no temporal extent, spatial stride only."""

    def __init__(self, in_planes: int, out_planes: int, mid_planes: int | None = None, stride: int = 1) -> None:
        super().__init__(in_planes, out_planes, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return (1, stride, stride)


class Conv2Plus1D(nn.Sequential):
    """(2+1)D convolution: 1x3x3 spatial conv -> BN -> ReLU -> 3x1x1 temporal conv."""

    def __init__(self, in_planes: int, out_planes: int, mid_planes: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv3d(in_planes, mid_planes, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
            nn.BatchNorm3d(mid_planes),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid_planes, out_planes, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
        )

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return (stride, stride, stride)


class BasicBlock(nn.Module):
    """Two convs with a residual; ``mid_per_conv`` computes (2+1)D mid-planes per conv (VMZ)."""

    def __init__(self, in_planes: int, planes: int, conv_builder: ConvBuilder, stride: int = 1,
                 downsample: nn.Module | None = None, mid_per_conv: bool = False, drop_path: float = 0.0) -> None:
        super().__init__()
        mid1 = r2plus1d_mid_planes(in_planes, planes)
        mid2 = r2plus1d_mid_planes(planes, planes) if mid_per_conv else mid1
        self.conv1 = nn.Sequential(conv_builder(in_planes, planes, mid1, stride), nn.BatchNorm3d(planes),
                                   nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv_builder(planes, planes, mid2), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.drop_path = DropPath(drop_path)  # stochastic depth of the residual branch (no parameters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.drop_path(self.conv2(self.conv1(x))) + identity)


def basic_stem(out_planes: int = 64) -> nn.Sequential:
    """R3D/MC3 stem: 3x7x7 conv, stride (1, 2, 2)."""
    return nn.Sequential(
        nn.Conv3d(3, out_planes, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
        nn.BatchNorm3d(out_planes),
        nn.ReLU(inplace=True),
    )


def r2plus1d_stem(mid_planes: int = 45, out_planes: int = 64) -> nn.Sequential:
    """R(2+1)D stem: 1x7x7 spatial conv (stride 1, 2, 2) to 45 channels, then 3x1x1 temporal conv."""
    return nn.Sequential(
        nn.Conv3d(3, mid_planes, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
        nn.BatchNorm3d(mid_planes),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid_planes, out_planes, (3, 1, 1), (1, 1, 1), (1, 0, 0), bias=False),
        nn.BatchNorm3d(out_planes),
        nn.ReLU(inplace=True),
    )


class VideoResNet(nn.Module):
    """ResNet of :class:`BasicBlock` s over a stem; ``conv_makers`` picks the conv type per stage.

    ``drop_path`` is the stochastic-depth rate of the last block, rising linearly from 0 over the blocks (timm's
    ResNet ``drop_path_rate``); for layer-wise lr decay the stem is layer 0, ``layerK`` layer K and the classifier
    layer 5 (:meth:`layer_id`)."""

    num_layers = 4

    def __init__(self, conv_makers: list[ConvBuilder], layers: list[int], stem: nn.Module,
                 num_classes: int = 400, widths: tuple[int, ...] = (64, 128, 256, 512),
                 dropout: float = 0.0, mid_per_conv: bool = False, bn_eps: float = 1e-5,
                 zero_init_residual: bool = False, drop_path: float = 0.0) -> None:
        super().__init__()
        self.stem = stem
        self._in_planes = widths[0]
        self._mid_per_conv = mid_per_conv
        total = sum(layers)
        self._drop_rates = iter([drop_path * i / max(total - 1, 1) for i in range(total)])
        self.layer1 = self._make_layer(conv_makers[0], widths[0], layers[0], stride=1)
        self.layer2 = self._make_layer(conv_makers[1], widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(conv_makers[2], widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(conv_makers[3], widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.fc = nn.Linear(widths[3], num_classes)
        del self._drop_rates
        init_resnet_weights(self)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.eps = bn_eps
            if zero_init_residual and isinstance(m, BasicBlock):
                nn.init.zeros_(m.conv2[1].weight)

    def _make_layer(self, conv_builder: ConvBuilder, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._in_planes != planes:
            downsample = nn.Sequential(
                nn.Conv3d(self._in_planes, planes, 1, conv_builder.downsample_stride(stride), bias=False),
                nn.BatchNorm3d(planes),
            )
        layers = [BasicBlock(self._in_planes, planes, conv_builder, stride, downsample, self._mid_per_conv,
                             next(self._drop_rates))]
        self._in_planes = planes
        layers += [BasicBlock(planes, planes, conv_builder, mid_per_conv=self._mid_per_conv,
                              drop_path=next(self._drop_rates)) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def layer_id(self, name: str) -> int:
        """The layer of a parameter for layer-wise lr decay: 0 stem, K ``layerK``, 5 the classifier."""
        if name.startswith("stem."):
            return 0
        if name.startswith("layer"):
            return int(name[len("layer")])
        return self.num_layers + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


@register_model("r3d_18", family="video_resnet", reference=TORCHVISION_REF)
def r3d_18(num_classes: int, dropout: float = 0.0, drop_path: float = 0.0) -> VideoResNet:
    """R3D-18: 3x3x3 convs throughout."""
    return VideoResNet([Conv3DSimple] * 4, [2, 2, 2, 2], basic_stem(), num_classes, dropout=dropout, drop_path=drop_path)


@register_model("mc3_18", family="video_resnet", reference=TORCHVISION_REF)
def mc3_18(num_classes: int, dropout: float = 0.0, drop_path: float = 0.0) -> VideoResNet:
    """MC3-18: 3D convs in layer1, 2D (1x3x3) convs in layers 2-4."""
    return VideoResNet([Conv3DSimple] + [Conv3DNoTemporal] * 3, [2, 2, 2, 2], basic_stem(), num_classes,
                       dropout=dropout, drop_path=drop_path)


@register_model("r2plus1d_18", family="video_resnet", reference=TORCHVISION_REF)
def r2plus1d_18(num_classes: int, dropout: float = 0.0, mid_per_conv: bool = False,
                drop_path: float = 0.0) -> VideoResNet:
    """R(2+1)D-18 as in torchvision (one mid-plane count per block); ``mid_per_conv=True``: VMZ's Caffe2 R(2+1)D-18
    (``r2.5d_d18_l*.pkl``), whose second conv of a block has its own mid-plane count."""
    return VideoResNet([Conv2Plus1D] * 4, [2, 2, 2, 2], r2plus1d_stem(), num_classes, dropout=dropout, drop_path=drop_path,
                       mid_per_conv=mid_per_conv)


@register_model("r2plus1d_34", family="video_resnet", frames=32,
                reference="VMZ R(2+1)D-34 (facebookresearch/VMZ; ig65m-pytorch layout)")
def r2plus1d_34(num_classes: int, dropout: float = 0.0, drop_path: float = 0.0) -> VideoResNet:
    """R(2+1)D-34 as released by VMZ: mid-planes per conv, BatchNorm eps 1e-3 (Caffe2)."""
    return VideoResNet([Conv2Plus1D] * 4, [3, 4, 6, 3], r2plus1d_stem(), num_classes, dropout=dropout, drop_path=drop_path,
                       mid_per_conv=True, bn_eps=1e-3)


TINY_WIDTHS = (16, 32, 64, 128)


@register_model("r3d_tiny", family="video_resnet", frames=8, size=64,
                reference="vidrec: R3D with layers [1,1,1,1], widths 16-128 (tests, synthetic data)")
def r3d_tiny(num_classes: int, dropout: float = 0.0, drop_path: float = 0.0) -> VideoResNet:
    """A small R3D for tests and the CPU synthetic dataset."""
    return VideoResNet([Conv3DSimple] * 4, [1, 1, 1, 1], basic_stem(TINY_WIDTHS[0]), num_classes,
                       widths=TINY_WIDTHS, dropout=dropout, drop_path=drop_path)


@register_model("r2plus1d_tiny", family="video_resnet", frames=8, size=64,
                reference="vidrec: R(2+1)D with layers [1,1,1,1], widths 16-128, per-conv mid-planes")
def r2plus1d_tiny(num_classes: int, dropout: float = 0.0, drop_path: float = 0.0) -> VideoResNet:
    """A small R(2+1)D for tests and the CPU synthetic dataset (stem 3 -> 12 -> 16 channels)."""
    return VideoResNet([Conv2Plus1D] * 4, [1, 1, 1, 1], r2plus1d_stem(12, TINY_WIDTHS[0]), num_classes,
                       widths=TINY_WIDTHS, dropout=dropout, drop_path=drop_path, mid_per_conv=True)
