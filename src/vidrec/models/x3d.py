"""X3D (Feichtenhofer, CVPR 2020; facebookresearch/SlowFast ``video_model_builder.py`` class X3D).

Stem: a 1x3x3 conv (stride 1, 2, 2), a channelwise 5x1x1 conv, BN, ReLU (``stem_helper.py`` X3DStem). Four stages
of 24, 48, 96, 192 channels (``round_width(12 * 2^i, 2.0)``), depth ``ceil(d * (1, 2, 5, 3))`` with d = 2.2 (XS, S,
M) or 5.0 (L), each starting with spatial stride 2 and a projection shortcut. Blocks (``resnet_helper.py``
X3DTransform): 1x1x1 conv to 2.25x the width, BN, ReLU, channelwise 3x3x3 conv, BN, squeeze-excitation (every other
block from the first, ratio 1/16), Swish, 1x1x1 conv, BN; the sum goes through a ReLU. Head (``head_helper.py``
X3DHead): ``conv5`` 1x1x1 to 432 channels + BN + ReLU, average pooling, ``lin5`` to 2048 + ReLU, dropout, ``fc``.

XS and S share one network (they differ in their clips: 4 frames at 160 px vs 13 at 160); M is S's network fed
16 frames at 224; L is deeper. Differences between the three releases, both kept:

- PySlowFast and its mmaction2 port put a BatchNorm after every projection shortcut; pytorchvideo's
  ``create_x3d_res_block`` only where the width changes, so layer1's first shortcut (24 -> 24, stride 2) has none
  there: ``layer1_shortcut_bn=False`` builds pytorchvideo's network (48 parameters fewer).
- The head pools with a fixed kernel ``(frames, ceil(crop / 32), ceil(crop / 32))`` of the training clip, stride 1.
  Here the pooling is global (adaptive), which is that kernel at the training input, where it covers the map,
  and runs at any clip size. At the larger test crops (182 vs 160 ...) the authors pool windows of that kernel,
  apply ``lin5``, ReLU and the classifier at each position, softmax and average (X3DHead.forward in eval mode;
  pytorchvideo's PTVX3D wrapper the same): ``fully_conv = True`` does that (see :meth:`X3D._fully_conv_head`).
  mmaction2's X3DHead pools globally (``AdaptiveAvgPool3d``): its test is ``fully_conv = False``.

``lin5`` is the authors' 1x1x1 conv on the pooled map (``head.lin_5``, mmaction2's ``cls_head.fc1``) as a Linear;
``fc`` is ``head.projection``. Stochastic depth: PySlowFast's ``MODEL.DROPCONNECT_RATE`` (default 0) scaled by
``(stage + 2) / 5`` per stage (video_model_builder.py: ``drop_connect_rate * (stage + 2) / (len(block_basis) + 1)``);
its ResBlock calls ``drop_path`` without ``training=True``, so there the rate has no effect. Here it does.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from vidrec.models.layers import Bottleneck, check_dropout, conv3d, drop_path, init_resnet_weights
from vidrec.models.registry import register_model

REFERENCE = "facebookresearch/SlowFast slowfast/models/video_model_builder.py X3D (Feichtenhofer, CVPR 2020)"
X3D_MEAN = (0.45, 0.45, 0.45)  # PySlowFast slowfast/config/defaults.py@287ec00:687 DATA.MEAN
X3D_STD = (0.225, 0.225, 0.225)  # defaults.py@287ec00:693 DATA.STD
WIDTHS = (24, 48, 96, 192)  # round_width(12 * 2**i, WIDTH_FACTOR 2.0) for res2..res5
BOTTLENECK_FACTOR = 2.25
HEAD_INNER, HEAD_OUT = 432, 2048  # int(2.25 * 192), X3D.DIM_C5
# variant -> (depth factor, test frames, training crop, test crop): configs/Kinetics/X3D_*.yaml (DEPTH_FACTOR,
# NUM_FRAMES, TRAIN_CROP_SIZE, TEST_CROP_SIZE)
VARIANTS = {"xs": (2.2, 4, 160, 182), "s": (2.2, 13, 160, 182), "m": (2.2, 16, 224, 256), "l": (5.0, 16, 312, 356)}


def se_width(channels: int, ratio: float = 1 / 16, divisor: int = 8) -> int:
    """The squeeze width of PySlowFast's SE (operators.py ``SE._round_width``): ``channels * ratio`` rounded to a
    multiple of 8, at least 8, raised by 8 when rounding lost more than 10 %."""
    width = channels * ratio
    out = max(divisor, int(width + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * width else out


class SqueezeExcite(nn.Module):
    """Global average pool, 1x1x1 conv, ReLU, 1x1x1 conv, sigmoid; scales the input channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv3d(channels, se_width(channels), 1)
        self.fc2 = nn.Conv3d(se_width(channels), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(torch.relu(self.fc1(x.mean((2, 3, 4), keepdim=True))))
        return x * scale.sigmoid()


class X3DBlock(Bottleneck):
    """A :class:`Bottleneck` with a channelwise 3x3x3 conv2, squeeze-excitation after bn2, Swish instead of the
    second ReLU, and stochastic depth on the residual branch."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, use_se: bool, shortcut_bn: bool = True,
                 drop_path_rate: float = 0.0) -> None:
        mid = int(BOTTLENECK_FACTOR * out_planes)
        downsample = None
        if stride != 1 or in_planes != out_planes:
            layers = [conv3d(in_planes, out_planes, 1, (1, stride, stride))]
            downsample = nn.Sequential(*layers, *([nn.BatchNorm3d(out_planes)] if shortcut_bn else []))
        super().__init__(in_planes, mid, out_planes, (1, stride, stride), downsample, conv2_kernel=3, groups=mid)
        self.se = SqueezeExcite(mid) if use_se else nn.Identity()
        self.swish = nn.SiLU()
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.swish(self.se(self.bn2(self.conv2(out))))
        out = drop_path(self.bn3(self.conv3(out)), self.drop_path_rate, self.training)
        return self.relu(out + identity)


class X3D(nn.Module):
    """X3D-XS/S/M/L: ``depth_factor`` 2.2 or 5.0; ``head_pool`` the spatial kernel of the authors' head pooling
    (``ceil(training crop / 32)``), used by the fully convolutional test."""

    def __init__(self, depth_factor: float = 2.2, num_classes: int = 400, dropout: float = 0.0,
                 drop_path: float = 0.0, layer1_shortcut_bn: bool = True, head_pool: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(OrderedDict(
            conv_xy=conv3d(3, WIDTHS[0], (1, 3, 3), (1, 2, 2)),
            conv_t=conv3d(WIDTHS[0], WIDTHS[0], (5, 1, 1), groups=WIDTHS[0]),
            bn=nn.BatchNorm3d(WIDTHS[0]),
            relu=nn.ReLU(inplace=True),
        ))
        in_planes = WIDTHS[0]
        for stage, (base_depth, width) in enumerate(zip((1, 2, 5, 3), WIDTHS)):
            rate = drop_path * (stage + 2) / 5
            blocks = [X3DBlock(in_planes if i == 0 else width, width, 2 if i == 0 else 1, use_se=i % 2 == 0,
                               shortcut_bn=layer1_shortcut_bn or stage > 0, drop_path_rate=rate)
                      for i in range(math.ceil(depth_factor * base_depth))]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
            in_planes = width
        self.conv5 = conv3d(in_planes, HEAD_INNER, 1)
        self.bn5 = nn.BatchNorm3d(HEAD_INNER)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.fc = nn.Linear(HEAD_OUT, num_classes)
        self.head_pool = head_pool
        self.fully_conv = False  # True: the authors' fully convolutional test (see _fully_conv_head)
        init_resnet_weights(self, zero_init_residual=True)  # RESNET.ZERO_INIT_FINAL_BN, MODEL.FC_INIT_STD 0.01
        # added after init_resnet_weights, which expects a bias on every Linear; a conv there (msra fill)
        self.lin5 = nn.Linear(HEAD_INNER, HEAD_OUT, bias=False)
        nn.init.kaiming_normal_(self.lin5.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The map after ``conv5``, BN and ReLU (B, 432, T, H/32, W/32)."""
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.relu(self.bn5(self.conv5(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        if self.fully_conv and not self.training:
            return self._fully_conv_head(x)
        x = self.relu(self.lin5(x.mean((2, 3, 4))))
        return self.fc(self.dropout(x))

    def _fully_conv_head(self, x: torch.Tensor) -> torch.Tensor:
        """The authors' test head (head_helper.py X3DHead, eval): average pool of kernel (T, k, k) with k =
        ``head_pool``, stride 1 (the kernel's T is the training clip's frames, the whole map at the test clip),
        ``lin5``, ReLU and ``fc`` at every position, softmax per position, mean over positions. Returns the log
        of that mean, so that a softmax of the output is the mean."""
        k = (min(self.head_pool, x.shape[3]), min(self.head_pool, x.shape[4]))
        pooled = nn.functional.avg_pool3d(x, (x.shape[2], *k), stride=1).flatten(2).transpose(1, 2)
        logits = self.fc(self.relu(self.lin5(pooled)))  # (B, positions, classes)
        return logits.softmax(dim=-1).mean(dim=1).log()

    def stage_of(self, name: str) -> int:
        """Stage of a parameter name for freezing: stem 0, layer1..4 1-4, the head's conv5/bn5/lin5 4."""
        top = name.split(".", 1)[0]
        if top.startswith("layer"):
            return int(top[5:])
        return 4 if top in ("conv5", "bn5", "lin5") else 0


def _register(variant: str) -> None:
    depth_factor, frames, train_crop, test_crop = VARIANTS[variant]

    def builder(num_classes: int, dropout: float = 0.0, drop_path: float = 0.0,
                layer1_shortcut_bn: bool = True) -> X3D:
        return X3D(depth_factor, num_classes, dropout, drop_path, layer1_shortcut_bn, math.ceil(train_crop / 32))

    name = f"x3d_{variant}"
    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = (f"X3D-{variant.upper()}: {frames} frames, trained at {train_crop} px, tested on 3 crops of "
                       f"{test_crop} px (``layer1_shortcut_bn=False``: pytorchvideo's network).")
    register_model(name, family="x3d", reference=REFERENCE, frames=frames, size=test_crop, mean=X3D_MEAN,
                   std=X3D_STD)(builder)


for _variant in VARIANTS:
    _register(_variant)
