"""Inception-v1 I3D (Carreira & Zisserman, CVPR 2017; deepmind/kinetics-i3d).

Reproduces DeepMind's network: TensorFlow "SAME" padding (asymmetric, computed from the input size),
BatchNorm without a learned scale (eps 1e-3), inputs in [-1, 1]. Module names follow
piergiaj/pytorch-i3d (``Conv3d_1a_7x7.conv3d``, ``Mixed_3b.b1b.bn`` ...) except the classifier: DeepMind's
1x1x1 ``Logits/Conv3d_0c_1x1`` conv becomes the ``nn.Linear`` ``fc``. Since the logits are averaged over
time and the conv is linear, ``fc(mean(features))`` equals DeepMind's ``mean(conv(features))``.

Head: DeepMind pools 2x7x7 (stride 1, VALID) and averages the logits over time. At the 224 px default
that is a global spatial mean of a 2-frame temporal average pool, which is what ``forward`` computes
(at any size; with a single feature frame the temporal pool is skipped).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidrec.models.layers import Triple, check_dropout, init_resnet_weights, triple
from vidrec.models.registry import SYMMETRIC_MEAN, SYMMETRIC_STD, register_model


def tf_same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) of one dimension: extra padding goes after."""
    total = max(kernel - (stride if size % stride == 0 else size % stride), 0)
    return total // 2, total - total // 2


class SamePad(nn.Module):
    """Zero padding that makes the next conv/pool behave like TensorFlow's ``padding="SAME"``.

    With stride 1 the padding is constant; otherwise it depends on the input size (static per traced
    input shape). Zero padding is exact before the max pools too: their inputs are ReLU outputs (>= 0).
    """

    def __init__(self, kernel: int | Triple, stride: int | Triple = 1) -> None:
        super().__init__()
        self.kernel = triple(kernel)
        self.stride = triple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for dim in (2, 1, 0):  # F.pad wants the last dimension first: W, H, T
            pads.extend(tf_same_pad(x.shape[2 + dim], self.kernel[dim], self.stride[dim]))
        return F.pad(x, pads)


class _SameUpperConv(torch.autograd.Function):
    """A SAME-padded conv or max pool whose ONNX form is the operator with ``auto_pad="SAME_UPPER"`` (TensorFlow's
    SAME: the extra padding after), so an exported graph pads for whatever clip length it is given; in PyTorch it
    is :class:`SamePad` followed by the op."""

    @staticmethod
    def forward(ctx, x, weight, kernel, stride, pool):  # noqa: ANN001, ANN205
        x = SamePad(kernel, stride)(x)
        return F.max_pool3d(x, kernel, stride) if pool else F.conv3d(x, weight, None, stride)

    @staticmethod
    def symbolic(g, x, weight, kernel, stride, pool):  # noqa: ANN001, ANN205
        if pool:
            return g.op("MaxPool", x, kernel_shape_i=list(kernel), strides_i=list(stride), auto_pad_s="SAME_UPPER")
        return g.op("Conv", x, weight, kernel_shape_i=list(kernel), strides_i=list(stride), auto_pad_s="SAME_UPPER")


def same_op(x: torch.Tensor, weight: torch.Tensor | None, kernel: Triple, stride: Triple) -> torch.Tensor:
    """SAME-padded conv (``weight`` given) or max pool; exported to ONNX with ``auto_pad`` (any clip length)."""
    if torch.onnx.is_in_onnx_export():
        return _SameUpperConv.apply(x, weight, kernel, stride, weight is None)
    x = SamePad(kernel, stride)(x)
    return F.max_pool3d(x, kernel, stride) if weight is None else F.conv3d(x, weight, None, stride)


class ScalelessBatchNorm3d(nn.BatchNorm3d):
    """BatchNorm with a fixed (non-trained) scale: Sonnet's ``BatchNorm(scale=False)``, eps 1e-3.

    ``weight`` is a buffer of ones, so the state dict keeps torch's key names (piergiaj's checkpoints
    load as is) while training only updates the offset ``bias``.
    """

    def __init__(self, num_features: int, eps: float = 1e-3, momentum: float = 0.01) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, affine=True)
        del self.weight
        self.register_buffer("weight", torch.ones(num_features))


class Unit3D(nn.Module):
    """SAME-padded Conv3d -> scaleless BN -> ReLU (DeepMind's ``Unit3D``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int | Triple = 1,
                 stride: int | Triple = 1) -> None:
        super().__init__()
        self.conv3d = nn.Conv3d(in_channels, out_channels, triple(kernel), triple(stride), bias=False)
        self.bn = ScalelessBatchNorm3d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(same_op(x, self.conv3d.weight, self.conv3d.kernel_size, self.conv3d.stride)))


class SameMaxPool3d(nn.Module):
    """Max pool with TensorFlow "SAME" padding."""

    def __init__(self, kernel: int | Triple, stride: int | Triple) -> None:
        super().__init__()
        self.kernel, self.stride = triple(kernel), triple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return same_op(x, None, self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches: 1x1x1 | 1x1x1 -> 3x3x3 | 1x1x1 -> 3x3x3 | 3x3x3 max pool -> 1x1x1; concatenated."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, widths[0])
        self.b1a = Unit3D(in_channels, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], 3)
        self.b2a = Unit3D(in_channels, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], 3)
        self.b3a = SameMaxPool3d(3, 1)
        self.b3b = Unit3D(in_channels, widths[5])
        self.out_channels = widths[0] + widths[2] + widths[4] + widths[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


# (endpoint, inception widths) in DeepMind's order
_MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


class InceptionI3d(nn.Module):
    """DeepMind's Inception-I3D; input (B, 3, T, H, W) in [-1, 1], logits (B, num_classes)."""

    def __init__(self, num_classes: int = 400, dropout: float = 0.0) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, 7, 2)
        self.MaxPool3d_2a_3x3 = SameMaxPool3d((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, 3)
        self.MaxPool3d_3a_3x3 = SameMaxPool3d((1, 3, 3), (1, 2, 2))
        channels = 192
        for name, widths in _MIXED.items():
            if name == "Mixed_4b":
                self.MaxPool3d_4a_3x3 = SameMaxPool3d(3, 2)
            if name == "Mixed_5b":
                self.MaxPool3d_5a_2x2 = SameMaxPool3d(2, 2)
            module = InceptionModule(channels, widths)
            setattr(self, name, module)
            channels = module.out_channels
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.fc = nn.Linear(channels, num_classes)
        init_resnet_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Mixed_5c features (B, 1024, T/8, H/32, W/32)."""
        for module in self.children():
            if module is self.dropout:
                break
            x = module(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        if x.shape[2] > 1:  # DeepMind's 2-frame average pool (stride 1, VALID) before the time average
            x = F.avg_pool3d(x, (2, 1, 1), 1)
        x = x.mean(dim=(2, 3, 4))
        return self.fc(self.dropout(x))


@register_model("i3d_inception", family="inception_i3d", frames=64, size=224, mean=SYMMETRIC_MEAN,
                std=SYMMETRIC_STD, reference="deepmind/kinetics-i3d i3d.py (Carreira & Zisserman, CVPR 2017)")
def i3d_inception(num_classes: int, dropout: float = 0.0) -> InceptionI3d:
    """Inception-v1 I3D as released by DeepMind (RGB stream)."""
    return InceptionI3d(num_classes, dropout)
