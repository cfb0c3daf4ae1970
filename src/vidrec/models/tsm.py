"""TSN and TSM: a 2D ResNet-50 on every segment frame, averaged over the segments.

TSN (Wang et al., ECCV 2016) and TSM (Lin et al., ICCV 2019) as the TSM authors implement both
(mit-han-lab/temporal-shift-module ``ops/models.py`` class ``TSN``): a torchvision ResNet-50 runs on the
B·T frames of a clip of T segment frames; TSM adds the temporal shift (``ops/temporal_shift.py``,
placement ``blockres``: in the residual branch, before ``conv1`` of every bottleneck, 1/8 of the channels
shifted each way over the T segments of a clip). Module names are torchvision's (``conv1``, ``bn1``,
``layer1..4``), the shifted convs wrapped as ``conv1.net`` like the authors', so torchvision's ImageNet
ResNet-50 and the authors' checkpoints map key for key (:mod:`vidrec.models.weights.tsm`).

Head: the authors apply dropout and their classifier ``new_fc`` to every frame and average the logits over
the segments (``ConsensusModule('avg')``). Ours applies the same dropout per frame, averages the features
over the segments and applies ``fc`` once: by linearity ``mean_t(fc(x_t)) = fc(mean_t(x_t))``, so the
logits are the same and ``fc`` receives pooled features (B, 2048) like every vidrec classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from vidrec.models.layers import Bottleneck, check_dropout
from vidrec.models.registry import IMAGENET_MEAN, IMAGENET_STD, register_model

REPO = "mit-han-lab/temporal-shift-module"
REFERENCE_TSM = f"{REPO} ops/models.py + ops/temporal_shift.py (Lin et al., ICCV 2019)"
REFERENCE_TSN = f"{REPO} ops/models.py, is_shift=False (TSN, Wang et al., ECCV 2016)"


def temporal_shift(x: torch.Tensor, segments: int, fold_div: int = 8) -> torch.Tensor:
    """Shift channels over time, ``x`` (N·T, C, H, W) with the T frames of a clip consecutive.

    With ``fold = C // fold_div``: channels ``[0, fold)`` take the next frame's values (``out[t] = x[t + 1]``,
    "shift left"), channels ``[fold, 2·fold)`` the previous frame's (``out[t] = x[t - 1]``), zeros where that
    frame does not exist; the other channels are unchanged (the TSM authors' ``TemporalShift.shift``).
    """
    nt, c, h, w = x.shape
    x = x.view(nt // segments, segments, c, h, w)
    fold = c // fold_div
    out = torch.empty_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]
    out[:, -1:, :fold] = 0
    out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]
    out[:, :1, fold:2 * fold] = 0
    out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    return out.view(nt, c, h, w)


class TemporalShift(nn.Module):
    """:func:`temporal_shift` before ``net`` (the authors' wrapper, hence their key names ``conv1.net.*``).

    ``segments`` (frames per clip) is set by :meth:`TSN.frame_features` from the clip it receives.
    """

    def __init__(self, net: nn.Module, fold_div: int = 8) -> None:
        super().__init__()
        self.net = net
        self.fold_div = fold_div
        self.segments = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(temporal_shift(x, self.segments, self.fold_div))

    def extra_repr(self) -> str:
        return f"fold_div={self.fold_div}"


class Bottleneck2d(Bottleneck):
    """torchvision's ResNet bottleneck (1x1, 3x3 with the stride, 1x1): the forward of
    :class:`vidrec.models.layers.Bottleneck` on 2D modules."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        nn.Module.__init__(self)  # Bottleneck.__init__ would build 3D convs: the same attributes, in 2D
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample


def _stage(in_planes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    downsample = nn.Sequential(nn.Conv2d(in_planes, planes * 4, 1, stride, bias=False),
                               nn.BatchNorm2d(planes * 4))
    layers = [Bottleneck2d(in_planes, planes, stride, downsample)]
    layers += [Bottleneck2d(planes * 4, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class TSN(nn.Module):
    """ResNet-50 on every frame of a (B, 3, T, H, W) clip, features averaged over T, then ``fc``.

    ``shift=True`` makes it TSM (``shift_div``: 1/shift_div of the channels shifted each way). ``partial_bn``
    freezes every BatchNorm but the first in training (running statistics and affine parameters), the authors'
    default for fine-tuning (``TSN.train``/``partialBN``; their Kinetics and Something-Something runs turn it
    off with ``--npb``).
    """

    def __init__(self, num_classes: int = 400, layers: tuple[int, ...] = (3, 4, 6, 3), shift: bool = False,
                 shift_div: int = 8, dropout: float = 0.0, partial_bn: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_planes = 64
        for i, (blocks, planes) in enumerate(zip(layers, (64, 128, 256, 512))):
            setattr(self, f"layer{i + 1}", _stage(in_planes, planes, blocks, 1 if i == 0 else 2))
            in_planes = planes * 4
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.fc = nn.Linear(in_planes, num_classes)
        self.partial_bn = partial_bn
        for m in self.modules():  # torchvision's ResNet init; the authors' new_fc N(0, 0.001), bias 0
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.fc.weight, 0, 0.001)
        nn.init.zeros_(self.fc.bias)
        self._shifts: list[TemporalShift] = []
        if shift:  # 'blockres' with n_round 1 (ResNet-50's layer3 has fewer than 23 blocks): every block
            for name in ("layer1", "layer2", "layer3", "layer4"):
                for block in getattr(self, name):
                    block.conv1 = TemporalShift(block.conv1, shift_div)
                    self._shifts.append(block.conv1)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled ResNet features of every frame: (B, 3, T, H, W) -> (B, T, 2048)."""
        b, c, t, h, w = x.shape
        for shift in self._shifts:
            shift.segments = t
        x = x.transpose(1, 2).reshape(b * t, c, h, w)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1).view(b, t, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.frame_features(x)).mean(1))

    def train(self, mode: bool = True) -> TSN:
        super().train(mode)
        if mode and self.partial_bn:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d) and m is not self.bn1:
                    m.eval()
                    m.weight.requires_grad_(False)
                    m.bias.requires_grad_(False)
        return self


@register_model("tsn_r50", family="tsm", reference=REFERENCE_TSN, frames=8, size=224, mean=IMAGENET_MEAN,
                std=IMAGENET_STD)
def tsn_r50(num_classes: int, dropout: float = 0.0, partial_bn: bool = False) -> TSN:
    """TSN with a ResNet-50: per-frame 2D network, segment consensus by averaging."""
    return TSN(num_classes, dropout=dropout, partial_bn=partial_bn)


@register_model("tsm_r50", family="tsm", reference=REFERENCE_TSM, frames=8, size=224, mean=IMAGENET_MEAN,
                std=IMAGENET_STD)
def tsm_r50(num_classes: int, dropout: float = 0.0, partial_bn: bool = False, shift_div: int = 8) -> TSN:
    """TSM-ResNet-50: TSN with the residual temporal shift (1/8 of the channels each way)."""
    return TSN(num_classes, shift=True, shift_div=shift_div, dropout=dropout, partial_bn=partial_bn)
