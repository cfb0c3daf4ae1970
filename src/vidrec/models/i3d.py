"""I3D-ResNet and Non-local I3D-ResNet (Wang et al., CVPR 2018; facebookresearch/video-nonlocal-net).

Two stems, as the repo's two model files (VIDEO_ARC_CHOICE 2 and 4, ``obtain_arc``):

- ``resnet_video_org.py``, the paper's 32×2 models (``scripts/run_i3d_*_400k_32f.sh``:
  ``MODEL.MODEL_NAME resnet_video_org``): conv1 5x7x7 stride (2, 2, 2) (``temp_strides_1=[2]``), max pool
  2x3x3 stride (2, 2, 2) — with ``pool2``, a total temporal stride of 8 (32 frames → 4 at res5);
  names ``i3d_r50_32x2``, ``i3d_nl_r50_32x2``, ``i3d_r101_32x2``, ``i3d_nl_r101_32x2``.
- ``resnet_video.py``, the 8×8 models: conv1 stride (1, 2, 2), max pool 1x3x3 stride (1, 2, 2) (8 frames → 4);
  names ``*_8x8``. The unsuffixed names (``i3d_r50`` ...) are this network with a 32-frame default clip (4× the
  compute of the 32×2 network; kept for runs that chose it).

Then: BN, ReLU after conv1, the max pool without padding, res2, a 2x1x1 temporal max pool (``pool2``), res3..res5.
Bottlenecks are 3x1x1 (inflated, or 1x1x1) -> 1x3x3 (spatial stride) -> 1x1x1. Inflated blocks: all of
res2, blocks 0, 2 of res3, even blocks of res4, block 1 of res5. Non-local blocks (embedded Gaussian,
scaled by 1/sqrt(C/2), phi/g max-pooled 1x2x2, BN with gamma 0) follow res3 blocks 1, 3 and res4 blocks
1, 3, 5 (ResNet-50) or 6, 13, 20 (ResNet-101). Module names are torchvision's ResNet names (conv1,
bn1, layer1..4, fc), so ImageNet ResNets inflate key for key.

C2D (``c2d_r50``, ``c2d_nl_r50``; ``obtain_arc`` arc_type 1, ``VIDEO_ARC_CHOICE 1``): the same network with
1x1x1 temporal kernels everywhere (conv1 1x7x7, every bottleneck 1x1x1 -> 1x3x3 -> 1x1x1), the same pool1,
pool2 and non-local blocks — a 2D ResNet-50 applied per frame, whose only temporal operations are the
max pools and the non-local blocks. ``temporal_stride=True`` is ``resnet_video_org.py``'s stem (the 32×2 files).

The frozen-BN fine-tuned releases (``MODEL.USE_AFFINE True``: the 32×4 and 128×1 files) store every BN as an
affine layer and build their non-local blocks without BN (``NONLOCAL.USE_BN False``, output conv zero-initialised)
and, in res3, within groups of 4 consecutive frames (``res_stage_nonlocal_group``, ``group_size=4``):
``nl_bn=False, nl_group_size=4``.
"""

from __future__ import annotations

import torch
from torch import nn

from vidrec.models.layers import Bottleneck, check_dropout, init_resnet_weights, projection_shortcut
from vidrec.models.registry import register_model

REFERENCE = "facebookresearch/video-nonlocal-net resnet_video.py (Wang et al., CVPR 2018)"
NL_MEAN = (0.45, 0.45, 0.45)  # MODEL.MEAN 114.75 / 255, RGB
NL_STD = (0.225, 0.225, 0.225)  # MODEL.STD 57.375 / 255

# depth -> blocks per stage, inflated (3x1x1) blocks per stage, non-local block indices in layer2/layer3
_ARCH = {
    50: ([3, 4, 6, 3], [(0, 1, 2), (0, 2), (0, 2, 4), (1,)], {"layer2": (1, 3), "layer3": (1, 3, 5)}),
    101: ([3, 4, 23, 3], [(0, 1, 2), (0, 2), tuple(range(0, 23, 2)), (1,)],
          {"layer2": (1, 3), "layer3": (6, 13, 20)}),
}


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block with residual: ``x + BN(W_out · softmax(θᵀφ/√C') g)``."""

    def __init__(self, channels: int, inner: int | None = None, subsample: bool = True,
                 scale: bool = True, bn: bool = True, group_size: int | None = None) -> None:
        super().__init__()
        inner = inner or channels // 2
        self.theta = nn.Conv3d(channels, inner, 1)
        self.phi = nn.Conv3d(channels, inner, 1)
        self.g = nn.Conv3d(channels, inner, 1)
        self.pool = nn.MaxPool3d((1, 2, 2), (1, 2, 2)) if subsample else nn.Identity()
        self.out = nn.Conv3d(inner, channels, 1)
        self.bn = nn.BatchNorm3d(channels) if bn else nn.Identity()
        self.scale = inner ** -0.5 if scale else 1.0
        self.group_size = group_size  # attend within groups of this many consecutive frames (None: all)
        for conv in (self.theta, self.phi, self.g, self.out):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        # the block starts as the identity: BN gamma 0, or without BN the output conv 0 (USE_ZERO_INIT_CONV)
        nn.init.zeros_(self.bn.weight if bn else self.out.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g, (b, c, t, h, w) = self.group_size, x.shape
        if g is None or t == g:
            return self._attend(x)
        if t % g:
            raise ValueError(f"non-local groups of {g} frames need a multiple of {g} frames here, got {t}")
        # nonlocal_helper.add_nonlocal_group: frames k·g .. k·g + g - 1 form group k, folded into the batch
        y = self._attend(x.view(b, c, t // g, g, h, w).transpose(1, 2).reshape(b * t // g, c, g, h, w))
        return y.view(b, t // g, c, g, h, w).transpose(1, 2).reshape(b, c, t, h, w)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.theta(x)
        pooled = self.pool(x)
        phi = self.phi(pooled).flatten(2)
        g = self.g(pooled).flatten(2)
        affinity = torch.bmm(theta.flatten(2).transpose(1, 2), phi) * self.scale  # (B, THW, T'H'W')
        y = torch.bmm(affinity.softmax(dim=-1), g.transpose(1, 2))  # (B, THW, C')
        y = y.transpose(1, 2).reshape(theta.shape)
        return x + self.bn(self.out(y))


class I3DResNet(nn.Module):
    """ResNet-50/101 inflated to 3D (``inflate=False``: C2D, 1x1x1 temporal kernels); ``non_local=True`` adds
    the five non-local blocks (``nl_bn``, ``nl_group_size``: see the module docstring)."""

    def __init__(self, depth: int = 50, num_classes: int = 400, non_local: bool = False,
                 nl_subsample: bool = True, dropout: float = 0.0, zero_init_residual: bool = True,
                 temporal_stride: bool = False, inflate: bool = True, nl_bn: bool = True,
                 nl_group_size: int | None = None) -> None:
        super().__init__()
        blocks, inflated, nl_positions = _ARCH[depth]
        if not inflate:  # obtain_arc(1): use_temp_convs all 0 -> conv1 1x7x7, every branch2a 1x1x1
            inflated = [()] * len(blocks)
        t = 2 if temporal_stride else 1  # resnet_video_org.py: temp_strides_1=[2], pool1 [2, 3, 3] / [2, 2, 2]
        kt = 5 if inflate else 1  # conv1 [1 + use_temp_convs_1 * 2, 7, 7], pads [use_temp_convs_1, 3, 3]
        self.conv1 = nn.Conv3d(3, 64, (kt, 7, 7), (t, 2, 2), (kt // 2, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((t, 3, 3), (t, 2, 2))
        self.pool2 = nn.MaxPool3d((2, 1, 1), (2, 1, 1))
        in_planes = 64
        for stage, (n, planes) in enumerate(zip(blocks, (64, 128, 256, 512))):
            stride = 1 if stage == 0 else 2
            layer = []
            for i in range(n):
                s = stride if i == 0 else 1
                downsample = projection_shortcut(in_planes, planes * 4, (1, s, s)) if i == 0 else None
                conv1_kernel = (3, 1, 1) if i in inflated[stage] else 1
                layer.append(Bottleneck(in_planes, planes, planes * 4, (1, s, s), downsample, conv1_kernel,
                                        conv2_kernel=(1, 3, 3)))
                in_planes = planes * 4
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
        self.nonlocal_blocks = nn.ModuleDict()
        if non_local:
            for layer_name, indices in nl_positions.items():
                channels = getattr(self, layer_name)[0].bn3.num_features
                group = nl_group_size if layer_name == "layer2" else None  # grouped in res3 only
                for i in indices:
                    self.nonlocal_blocks[f"{layer_name}_{i}"] = NonLocalBlock(
                        channels, subsample=nl_subsample, bn=nl_bn, group_size=group)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fully_conv = False  # True: the fully convolutional test of video-nonlocal-net (see forward)
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.fc = nn.Linear(in_planes, num_classes)
        nl_state = {k: v.clone() for k, v in self.nonlocal_blocks.state_dict().items()}
        init_resnet_weights(self, zero_init_residual=zero_init_residual)  # Caffe2 BN_INIT_GAMMA 0
        self.nonlocal_blocks.load_state_dict(nl_state)  # keep the non-local init (N(0, 0.01), BN gamma 0)

    def _stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(getattr(self, name)):
            x = block(x)
            key = f"{name}_{i}"
            if key in self.nonlocal_blocks:
                x = self.nonlocal_blocks[key](x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.pool2(self._stage("layer1", x))
        for name in ("layer2", "layer3", "layer4"):
            x = self._stage(name, x)
        if self.fully_conv and not self.training:
            return self._fully_conv_head(x)
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))

    def _fully_conv_head(self, x: torch.Tensor) -> torch.Tensor:
        """video-nonlocal-net's test head (``resnet_video_org.py``, ``split == 'test'``): average pool of kernel
        (T, 7, 7), stride 1, the classifier as a 1x1x1 conv at every position, softmax per position, then the
        mean over positions. Returns the log of that mean, so that a softmax of the output is the mean."""
        pooled = nn.functional.avg_pool3d(x, (x.shape[2], min(7, x.shape[3]), min(7, x.shape[4])), stride=1)
        logits = torch.einsum("bcthw,kc->bkthw", pooled, self.fc.weight) + self.fc.bias[:, None, None, None]
        return logits.flatten(2).softmax(dim=1).mean(dim=2).log()


def _register(name: str, depth: int, non_local: bool, temporal_stride: bool, frames: int, reference: str) -> None:
    if non_local:
        def builder(num_classes: int, dropout: float = 0.0, nl_subsample: bool = True, nl_bn: bool = True,
                    nl_group_size: int | None = None, zero_init_residual: bool = True) -> I3DResNet:
            return I3DResNet(depth, num_classes, True, nl_subsample, dropout, zero_init_residual, temporal_stride,
                             nl_bn=nl_bn, nl_group_size=nl_group_size)
    else:
        def builder(num_classes: int, dropout: float = 0.0, zero_init_residual: bool = True) -> I3DResNet:
            return I3DResNet(depth, num_classes, False, dropout=dropout, zero_init_residual=zero_init_residual,
                             temporal_stride=temporal_stride)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"{'Non-local ' if non_local else ''}I3D-ResNet-{depth} (video-nonlocal-net)."
    register_model(name, family="i3d", reference=reference, frames=frames, size=224, mean=NL_MEAN,
                   std=NL_STD)(builder)


REFERENCE_ORG = "facebookresearch/video-nonlocal-net resnet_video_org.py (Wang et al., CVPR 2018; 32×2 models)"
for _depth in (50, 101):
    for _nl in (False, True):
        _base = f"i3d_{'nl_' if _nl else ''}r{_depth}"
        _register(_base, _depth, _nl, False, 32, REFERENCE)
        _register(f"{_base}_8x8", _depth, _nl, False, 8, REFERENCE)
        _register(f"{_base}_32x2", _depth, _nl, True, 32, REFERENCE_ORG)

# C2D: the 8×8 configuration by default (DBG_kinetics_resnet_8gpu_c2d_nonlocal_400k.yaml TEST.VIDEO_LENGTH 8,
# SAMPLE_RATE 8; scripts/run_c2d_*_400k.sh); temporal_stride=True builds the 32×2 stem (run_c2d_*_400k_32f.sh)
REFERENCE_C2D = "facebookresearch/video-nonlocal-net resnet_video.py obtain_arc(1) (C2D; Wang et al., CVPR 2018)"


@register_model("c2d_r50", family="i3d", reference=REFERENCE_C2D, frames=8, size=224, mean=NL_MEAN, std=NL_STD)
def c2d_r50(num_classes: int, dropout: float = 0.0, temporal_stride: bool = False,
            zero_init_residual: bool = True) -> I3DResNet:
    """C2D ResNet-50 (video-nonlocal-net): ImageNet's ResNet-50 per frame with pool1/pool2 temporal max pools."""
    return I3DResNet(50, num_classes, dropout=dropout, zero_init_residual=zero_init_residual,
                     temporal_stride=temporal_stride, inflate=False)


@register_model("c2d_nl_r50", family="i3d", reference=REFERENCE_C2D, frames=8, size=224, mean=NL_MEAN, std=NL_STD)
def c2d_nl_r50(num_classes: int, dropout: float = 0.0, temporal_stride: bool = False, nl_subsample: bool = True,
               nl_bn: bool = True, nl_group_size: int | None = None, zero_init_residual: bool = True) -> I3DResNet:
    """Non-local C2D ResNet-50: the C2D network with the five non-local blocks of NL I3D."""
    return I3DResNet(50, num_classes, True, nl_subsample, dropout, zero_init_residual, temporal_stride,
                     inflate=False, nl_bn=nl_bn, nl_group_size=nl_group_size)
