"""Channel-separated networks, ir-CSN and ip-CSN (Tran et al., ICCV 2019; facebookresearch/VMZ).

A ResNet of bottlenecks whose 3x3x3 conv is channel-wise (groups = channels). VMZ
``c2/lib/models/r3d_model.py`` (``model_blocktype``, ``create_r3d``) and ``builder/video_model.py``
(``add_bottleneck``, ``add_conv``):

- ir-CSN (block type ``3d-sep``): 1x1x1 -> channel-wise 3x3x3 -> 1x1x1, i.e. :class:`layers.Bottleneck`
  with ``groups = channels``;
- ip-CSN (block type ``0.3d``): the 3x3x3 conv becomes 1x1x1 conv -> BN -> channel-wise 3x3x3, no ReLU
  between (VMZ pt ``IPConv3DDepthwise`` and mmaction2 ``CSNBottleneck3d`` agree): :class:`IPBottleneck`.

Stem: 3x7x7 conv stride (1, 2, 2), BN, ReLU, 1x3x3 max pool stride (1, 2, 2) padding (0, 1, 1)
(``use_pool1``, as every released model: ``test_irCSN_152_kinetics.sh --use_pool1=1``, VMZ pt
``BasicStem_Pool``). Stages 2-4 stride 2 in time and space, on the 3x3x3 conv and on the 1x1x1 shortcut
projection (``use_striding = [2, 2, 2]``): total temporal stride 8, spatial 32. Module names are
torchvision's ResNet names (conv1, bn1, layer1..4, fc); the converters of :mod:`vidrec.models.weights.csn`
map VMZ's Caffe2 blobs, VMZ's PyTorch names, pytorchvideo's and mmaction2's keys onto them.

Head: global average pool, ``fc`` (VMZ's ``last_out_L<n>`` FC; pytorchvideo applies its ``proj`` Linear at
each position of a (T/8, 7, 7) average pool and averages the logits, the same map by linearity where the
windows cover the clip, as at its 32×224 training clip). ``fully_conv``: the authors' test head, see below.

BatchNorm epsilon: 1e-3 for the VMZ networks (Caffe2 ``SpatialBN(epsilon=1e-3)``, VMZ pt ``m.eps = 1e-3``,
mmaction2 ``norm_cfg eps=1e-3``), 1e-5 for pytorchvideo's ``csn_r101`` (``nn.BatchNorm3d``).
"""

from __future__ import annotations

import torch
from torch import nn

from vidrec.models.i3d import I3DResNet
from vidrec.models.layers import Bottleneck, check_dropout, conv3d, init_resnet_weights, projection_shortcut
from vidrec.models.registry import register_model

VMZ_REFERENCE = ("facebookresearch/VMZ c2/lib/models/r3d_model.py, pt/vmz/models/csn.py "
                 "(Tran et al., ICCV 2019)")
PTV_REFERENCE = "facebookresearch/pytorchvideo models/hub/csn.py csn_r101 (create_csn, depth 101)"
# PySlowFast slowfast/config/defaults.py@287ec00:687, 693 DATA.MEAN, DATA.STD (CSN_32x2_R101.yaml keeps them)
PTV_MEAN = (0.45, 0.45, 0.45)
PTV_STD = (0.225, 0.225, 0.225)

DEPTHS = {101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}  # r3d_model.py BLOCK_CONFIG; pytorchvideo csn.py
MODES = ("ir", "ip")


class IPBottleneck(Bottleneck):
    """ip-CSN bottleneck: conv2 is 1x1x1 conv -> BN -> channel-wise 3x3x3 (keys conv2.0, conv2.1, conv2.2)."""

    def __init__(self, in_planes: int, mid_planes: int, out_planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, bn_eps: float = 1e-5) -> None:
        super().__init__(in_planes, mid_planes, out_planes, stride, downsample, groups=mid_planes,
                         bn_eps=bn_eps)
        self.conv2 = nn.Sequential(conv3d(mid_planes, mid_planes, 1),
                                   nn.BatchNorm3d(mid_planes, eps=bn_eps),
                                   conv3d(mid_planes, mid_planes, 3, stride, groups=mid_planes))


class CSN(nn.Module):
    """ir-CSN / ip-CSN of ``layers`` bottlenecks per stage (widths 64-512, expansion 4)."""

    def __init__(self, layers: list[int], mode: str = "ir", num_classes: int = 400,
                 dropout: float = 0.0, bn_eps: float = 1e-3, zero_init_residual: bool = False) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.conv1 = conv3d(3, 64, (3, 7, 7), (1, 2, 2))
        self.bn1 = nn.BatchNorm3d(64, eps=bn_eps)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        in_planes = 64
        for stage, (n, mid) in enumerate(zip(layers, (64, 128, 256, 512))):
            blocks = []
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                shortcut = projection_shortcut(in_planes, 4 * mid, stride, bn_eps) if i == 0 else None
                if mode == "ip":
                    blocks.append(IPBottleneck(in_planes, mid, 4 * mid, stride, shortcut, bn_eps))
                else:
                    blocks.append(Bottleneck(in_planes, mid, 4 * mid, stride, shortcut, groups=mid,
                                             bn_eps=bn_eps))
                in_planes = 4 * mid
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fully_conv = False  # True: the fully convolutional test of VMZ and PySlowFast (below)
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.fc = nn.Linear(in_planes, num_classes)
        init_resnet_weights(self, zero_init_residual=zero_init_residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.fully_conv and not self.training:
            return self._fully_conv_head(x)
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))

    # The test head of VMZ (r3d_model.py ``final_avg`` of kernel (clip/8, 7, 7), stride 1, then the classifier
    # as a 1x1x1 conv with --use_convolutional_pred; loss_creator.py: Softmax, then ReduceBackMean over the
    # positions) and of PySlowFast's PTVCSN (AvgPool3d (T/8, 7, 7) stride 1, softmax, mean) is
    # video-nonlocal-net's: at 256 crops, 2x2 positions whose mean of softmax is not the global average's.
    _fully_conv_head = I3DResNet._fully_conv_head


def _register(name: str, depth: int, mode: str, bn_eps: float, reference: str, **info: object) -> None:
    def builder(num_classes: int, dropout: float = 0.0, zero_init_residual: bool = False) -> CSN:
        return CSN(DEPTHS[depth], mode, num_classes, dropout, bn_eps, zero_init_residual)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"{mode}-CSN-{depth} (BatchNorm eps {bn_eps:g})."
    # frames 32, size 256: the authors' test clip and crop (test_irCSN_152_kinetics.sh, CSN_32x2_R101.yaml)
    register_model(name, family="csn", reference=reference, frames=32, size=256, **info)(builder)


_register("ir_csn_152", 152, "ir", 1e-3, VMZ_REFERENCE)
_register("ip_csn_152", 152, "ip", 1e-3, VMZ_REFERENCE)
_register("csn_r101", 101, "ir", 1e-5, PTV_REFERENCE, mean=PTV_MEAN, std=PTV_STD)
