"""Building blocks shared by the model families."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Triple = tuple[int, int, int]


def triple(value: int | Triple) -> Triple:
    """``3`` -> ``(3, 3, 3)``; a 3-tuple is returned unchanged."""
    return (value, value, value) if isinstance(value, int) else tuple(value)


def same_padding(kernel: int | Triple) -> Triple:
    """Symmetric padding keeping the size of an odd kernel at stride 1."""
    return tuple(k // 2 for k in triple(kernel))


def conv3d(in_planes: int, out_planes: int, kernel: int | Triple, stride: int | Triple = 1,
           groups: int = 1) -> nn.Conv3d:
    """Bias-free Conv3d with symmetric "same" padding (the conv that precedes a BatchNorm)."""
    return nn.Conv3d(in_planes, out_planes, triple(kernel), triple(stride), same_padding(kernel),
                     groups=groups, bias=False)


class Bottleneck(nn.Module):
    """ResNet bottleneck ``conv1 -> conv2 -> conv3`` (+ shortcut), attributes conv1/bn1 ... bn3/downsample.

    ``conv1_kernel``/``conv2_kernel`` select the family: 1x1x1 + 3x3x3 (3D-ResNets), 3x1x1 or 1x1x1
    + 1x3x3 (I3D-ResNet, inflated first conv). The stride sits on conv2 (the 3x3 conv).
    """

    def __init__(self, in_planes: int, mid_planes: int, out_planes: int, stride: int | Triple = 1,
                 downsample: nn.Module | None = None, conv1_kernel: int | Triple = 1,
                 conv2_kernel: int | Triple = 3, groups: int = 1, bn_eps: float = 1e-5) -> None:
        super().__init__()
        self.conv1 = conv3d(in_planes, mid_planes, conv1_kernel)
        self.bn1 = nn.BatchNorm3d(mid_planes, eps=bn_eps)
        self.conv2 = conv3d(mid_planes, mid_planes, conv2_kernel, stride, groups=groups)
        self.bn2 = nn.BatchNorm3d(mid_planes, eps=bn_eps)
        self.conv3 = conv3d(mid_planes, out_planes, 1)
        self.bn3 = nn.BatchNorm3d(out_planes, eps=bn_eps)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def projection_shortcut(in_planes: int, out_planes: int, stride: int | Triple,
                        bn_eps: float = 1e-5) -> nn.Sequential:
    """Shortcut "B": 1x1x1 conv + BatchNorm (keys ``0.weight``, ``1.*``)."""
    return nn.Sequential(conv3d(in_planes, out_planes, 1, stride), nn.BatchNorm3d(out_planes, eps=bn_eps))


def check_dropout(dropout: float) -> float:
    """Validate a dropout probability (raises ValueError -> ConfigError in build_model)."""
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    return float(dropout)


def init_resnet_weights(model: nn.Module, zero_init_residual: bool = False) -> None:
    """torchvision's ResNet init: Kaiming-normal (fan_out) convs, BN (1, 0), Linear N(0, 0.01)."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            last_bn = getattr(m, "bn3", None)
            if isinstance(m, Bottleneck) and last_bn is not None:
                nn.init.zeros_(last_bn.weight)


# ------------------------------------------------------------------ transformer parts


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth (Huang et al., 2016): drop whole residual branches per sample, scale the rest by 1/keep."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    """:func:`drop_path` as a module (no parameters, so state dicts are unchanged)."""

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        self.rate = float(rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.rate, self.training)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class Mlp(nn.Module):
    """The transformer MLP ``fc1 -> GELU -> dropout -> fc2 -> dropout`` (keys ``fc1.*``, ``fc2.*``)."""

    def __init__(self, dim: int, hidden: int, out: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out or dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def stochastic_depth_rates(rate: float, depth: int) -> list[float]:
    """Drop-path rate of each of ``depth`` blocks, rising linearly from 0 to ``rate`` (every author's rule)."""
    if depth == 1:
        return [0.0]
    return [rate * i / (depth - 1) for i in range(depth)]


def biased_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``softmax(q kᵀ / √d + bias) v`` through ``scaled_dot_product_attention``, except under CPU autocast with a
    bias: there the fused call took 1.6× the time of the explicit product in bf16, forward + backward
    (benchmarks/README.md, reference speed), so the product is written out, as torchvision's MViT and Swin3D do."""
    if bias is None or q.device.type != "cpu" or not torch.is_autocast_enabled("cpu"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1) + bias
    return scores.softmax(-1) @ v
