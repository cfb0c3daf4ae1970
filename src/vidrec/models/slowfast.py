"""SlowFast and SlowOnly networks (Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV 2019).

Reference: facebookresearch/SlowFast ``slowfast/models/video_model_builder.py`` (``SlowFast``, ``ResNet``,
``FuseFastToSlow``), ``resnet_helper.py``, ``stem_helper.py``, ``head_helper.py``; pytorchvideo
``models/slowfast.py`` ``create_slowfast`` and ``models/resnet.py`` ``create_resnet``.

The network takes ONE clip (B, 3, T, H, W). The fast pathway sees all T frames with β = 1/8 of the channels; the
slow pathway sees T/α frames picked inside :meth:`SlowFast.forward` by PySlowFast's ``PackPathway`` rule,
``torch.index_select(x, 2, torch.linspace(0, T - 1, T // α).long())`` (``slowfast/datasets/utils.py``
``pack_pathway_output``). After the stem and after res2..res4 a lateral connection (PySlowFast ``FuseFastToSlow``:
a k×1×1 conv of temporal stride α to 2·β·C channels, BN, ReLU) is concatenated to the slow features; the head pools
each pathway over its whole map, concatenates [slow, fast] and applies ``fc``.

Temporal kernels (PySlowFast ``_TEMPORAL_KERNEL_BASIS['slowfast']`` / ``['slow']``, ``NUM_BLOCK_TEMP_KERNEL``
covering every block): slow stem 1×7×7 and bottlenecks 1×1×1 → 1×3×3 → 1×1×1 in res2/res3, 3×1×1 first convs in
res4/res5; fast stem 5×7×7 and 3×1×1 first convs everywhere; no temporal stride anywhere. SlowOnly is the slow
pathway alone (64 channels, no laterals).

Variants (PySlowFast ``configs/Kinetics/c2/SLOWFAST_*.yaml``, pytorchvideo ``hub/slowfast.py``): 4×16 (α 8, lateral
kernel 5), 8×8 (α 4, lateral kernel 7), R101 8×8 (α 4, lateral kernel 5). mmaction2's re-trainings differ in three
ways, selected by keyword arguments (their weights entries set them): the laterals are a bare conv without BN and
ReLU (``lateral_norm=False``, ``ResNet3dPathway(lateral_norm=False)``), the slow frames are ``x[:, :, ::α]``
(``slow_sampling="stride"``: ``ResNet3dSlowFast.forward`` resamples with ``interpolate(mode='nearest',
scale_factor=1/α)``) and their R101 keeps lateral kernel 7 (``fusion_kernel=7``).

Module names: pathways ``slow``/``fast`` with a stem ``conv1``/``bn1`` and stages ``layer1..4`` of
:class:`vidrec.models.layers.Bottleneck`, laterals ``lateral.0..3`` (after the stem, res2, res3, res4), classifier
``fc``; SlowOnly has the pathway's names at the top level (``conv1``, ``layer1``, ..., ``fc``).
"""

from __future__ import annotations

import torch
from torch import nn

from vidrec.models.layers import Bottleneck, check_dropout, conv3d, init_resnet_weights, projection_shortcut
from vidrec.models.registry import register_model

REFERENCE = "facebookresearch/SlowFast slowfast/models/video_model_builder.py SlowFast (Feichtenhofer et al., ICCV 2019)"
REFERENCE_SLOW = "facebookresearch/SlowFast slowfast/models/video_model_builder.py ResNet, arch slow (SlowOnly)"
PYSLOWFAST_MEAN = (0.45, 0.45, 0.45)  # PySlowFast slowfast/config/defaults.py DATA.MEAN
PYSLOWFAST_STD = (0.225, 0.225, 0.225)  # defaults.py DATA.STD

_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
SLOW_KERNELS = (1, (1, 1, 3, 3))  # (stem temporal kernel, first-conv temporal kernel of each stage)
FAST_KERNELS = (5, (3, 3, 3, 3))
SLOW_SAMPLINGS = ("linspace", "stride")


class Pathway(nn.Module):
    """One ResNet pathway: stem (``conv1`` (t×7×7, stride 1×2×2), ``bn1``, ReLU, 1×3×3 max pool of stride 1×2×2)
    and ``layer1..4``; ``extra[i]`` channels (a lateral connection) are concatenated before stage i."""

    def __init__(self, width: int, depth: int, stem_kernel: int, stage_kernels: tuple[int, ...],
                 extra: tuple[int, ...] = (0, 0, 0, 0)) -> None:
        super().__init__()
        self.conv1 = conv3d(3, width, (stem_kernel, 7, 7), (1, 2, 2))
        self.bn1 = nn.BatchNorm3d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        in_planes = width
        for stage, (blocks, kernel) in enumerate(zip(_BLOCKS[depth], stage_kernels)):
            planes, s = width * 2 ** stage, 1 if stage == 0 else 2
            in_planes += extra[stage]
            layer = []
            for i in range(blocks):
                shortcut = projection_shortcut(in_planes, planes * 4, (1, s, s)) if i == 0 else None
                layer.append(Bottleneck(in_planes, planes, planes * 4, (1, s, s) if i == 0 else 1, shortcut,
                                        conv1_kernel=(kernel, 1, 1), conv2_kernel=(1, 3, 3)))
                in_planes = planes * 4
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
        self.out_channels = in_planes

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))


class Lateral(nn.Module):
    """Fast → slow connection: k×1×1 conv of temporal stride α (``conv``), then ``bn`` and ReLU unless ``norm`` is
    False (mmaction2)."""

    def __init__(self, channels: int, out_channels: int, kernel: int, alpha: int, norm: bool = True) -> None:
        super().__init__()
        self.conv = conv3d(channels, out_channels, (kernel, 1, 1), (alpha, 1, 1))
        self.bn = nn.BatchNorm3d(out_channels) if norm else None
        self.relu = nn.ReLU(inplace=True) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x if self.bn is None else self.relu(self.bn(x))


def fully_conv_scores(features: list[torch.Tensor], fc: nn.Linear, window: int = 7) -> torch.Tensor:
    """PySlowFast's test head (``head_helper.ResNetBasicHead`` in eval mode, and ``PTVSlowFast``/``PTVResNet`` for
    pytorchvideo's models): each pathway average-pooled with the training pool size — all its frames × 7 × 7
    (``TRAIN_CROP_SIZE // 32``), stride 1 —, concatenated, the classifier at every position, a softmax per position,
    then the mean over positions. Returns the log of that mean, so that a softmax of the output is the mean.

    On a 256 px crop (an 8×8 map) this averages the softmax of 2×2 overlapping 7×7 windows, which neither the
    softmax of ``fc`` on the globally pooled features nor anything linear equals; at 224 px (a 7×7 map) both agree.
    """
    pooled = [nn.functional.avg_pool3d(x, (x.shape[2], min(window, x.shape[3]), min(window, x.shape[4])), stride=1)
              for x in features]
    logits = torch.einsum("bcthw,kc->bkthw", torch.cat(pooled, 1), fc.weight) + fc.bias[:, None, None, None]
    return logits.flatten(2).softmax(dim=1).mean(dim=2).log()


class SlowFast(nn.Module):
    """SlowFast ResNet-50/101 (β = 1/8, lateral channel ratio 2). ``fully_conv`` (set by the test stage): the
    authors' test head, :func:`fully_conv_scores`; else ``fc`` on globally pooled features (PySlowFast's
    projection at a 1×1×1 map, equal by linearity)."""

    def __init__(self, depth: int = 50, alpha: int = 4, fusion_kernel: int = 7, num_classes: int = 400,
                 dropout: float = 0.0, lateral_norm: bool = True, slow_sampling: str = "linspace",
                 zero_init_residual: bool = True, beta_inv: int = 8, fusion_ratio: int = 2) -> None:
        super().__init__()
        if slow_sampling not in SLOW_SAMPLINGS:
            raise ValueError(f"slow_sampling must be one of {SLOW_SAMPLINGS}, got {slow_sampling!r}")
        self.alpha, self.slow_sampling = alpha, slow_sampling
        fast_width = 64 // beta_inv
        fast_out = [fast_width] + [fast_width * 4 * 2 ** i for i in range(3)]  # after the stem, res2, res3, res4
        self.fast = Pathway(fast_width, depth, *FAST_KERNELS)
        self.slow = Pathway(64, depth, *SLOW_KERNELS, extra=tuple(c * fusion_ratio for c in fast_out))
        self.lateral = nn.ModuleList(Lateral(c, c * fusion_ratio, fusion_kernel, alpha, lateral_norm) for c in fast_out)
        self.fully_conv = False
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.fc = nn.Linear(self.slow.out_channels + self.fast.out_channels, num_classes)
        init_resnet_weights(self, zero_init_residual=zero_init_residual)  # PySlowFast ZERO_INIT_FINAL_BN True

    def slow_frames(self, x: torch.Tensor) -> torch.Tensor:
        """The slow pathway's T/α frames: PackPathway's linspace rule (on the CPU, as the authors compute it), or
        every α-th frame (``slow_sampling="stride"``, mmaction2)."""
        frames = x.shape[2]
        if frames % self.alpha:
            raise ValueError(f"SlowFast takes clips of a multiple of alpha={self.alpha} frames (the authors' 32), "
                             f"got {frames}: its lateral connections need T/alpha slow frames")
        if self.slow_sampling == "stride":
            return x[:, :, ::self.alpha]
        # a Python list, so that a traced or exported graph holds the indices as constants of the traced clip length
        index = [int(i) for i in torch.linspace(0, int(frames) - 1, int(frames) // self.alpha).long().tolist()]
        return torch.index_select(x, 2, torch.tensor(index, device=x.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        slow = self.slow.stem(self.slow_frames(x))
        fast = self.fast.stem(x)
        for i, name in enumerate(("layer1", "layer2", "layer3", "layer4")):
            slow = getattr(self.slow, name)(torch.cat([slow, self.lateral[i](fast)], 1))
            fast = getattr(self.fast, name)(fast)
        if self.fully_conv and not self.training:
            return fully_conv_scores([slow, fast], self.fc)
        return self.fc(self.dropout(torch.cat([slow.mean((2, 3, 4)), fast.mean((2, 3, 4))], 1)))

    def stage_of(self, name: str) -> int:
        """Freezing stage of a parameter or module name: ``slow.layerN``/``fast.layerN`` → N, ``lateral.i`` → i (the
        stage it follows), the stems → 0."""
        parts = name.split(".")
        if len(parts) > 1 and parts[0] in ("slow", "fast") and parts[1].startswith("layer"):
            return int(parts[1][5:])
        if len(parts) > 1 and parts[0] == "lateral":
            return int(parts[1])
        return 0


class SlowOnly(Pathway):
    """SlowOnly ResNet-50 (PySlowFast arch ``slow``): the slow pathway alone on its own T frames; ``fully_conv`` as
    in :class:`SlowFast`."""

    def __init__(self, depth: int = 50, num_classes: int = 400, dropout: float = 0.0,
                 zero_init_residual: bool = True) -> None:
        super().__init__(64, depth, *SLOW_KERNELS)
        self.fully_conv = False
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.fc = nn.Linear(self.out_channels, num_classes)
        init_resnet_weights(self, zero_init_residual=zero_init_residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        if self.fully_conv and not self.training:
            return fully_conv_scores([x], self.fc)
        return self.fc(self.dropout(x.mean((2, 3, 4))))


def _register_slowfast(name: str, depth: int, alpha: int, kernel: int) -> None:
    def builder(num_classes: int, dropout: float = 0.0, fusion_kernel: int = kernel, lateral_norm: bool = True,
                slow_sampling: str = "linspace", zero_init_residual: bool = True) -> SlowFast:
        return SlowFast(depth, alpha, fusion_kernel, num_classes, dropout, lateral_norm, slow_sampling,
                        zero_init_residual)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"SlowFast R{depth}, α {alpha}, lateral kernel {kernel} (32-frame fast clips)."
    # frames: the fast pathway's 32 (DATA.NUM_FRAMES); size: DATA.TEST_CROP_SIZE 256 of configs/Kinetics/c2/*.yaml
    register_model(name, family="slowfast", reference=REFERENCE, frames=32, size=256, mean=PYSLOWFAST_MEAN,
                   std=PYSLOWFAST_STD)(builder)


_register_slowfast("slowfast_r50_4x16", 50, 8, 5)  # configs/Kinetics/c2/SLOWFAST_4x16_R50.yaml SLOWFAST
_register_slowfast("slowfast_r50_8x8", 50, 4, 7)  # configs/Kinetics/c2/SLOWFAST_8x8_R50.yaml SLOWFAST
_register_slowfast("slowfast_r101_8x8", 101, 4, 5)  # configs/Kinetics/pytorchvideo/SLOWFAST_8x8_R101.yaml


@register_model("slow_r50_8x8", family="slowfast", reference=REFERENCE_SLOW, frames=8, size=256,
                mean=PYSLOWFAST_MEAN, std=PYSLOWFAST_STD)
def slow_r50_8x8(num_classes: int, dropout: float = 0.0, zero_init_residual: bool = True) -> SlowOnly:
    """SlowOnly R50, 8 frames at rate 8 (configs/Kinetics/c2/SLOW_8x8_R50.yaml)."""
    return SlowOnly(50, num_classes, dropout, zero_init_residual)
