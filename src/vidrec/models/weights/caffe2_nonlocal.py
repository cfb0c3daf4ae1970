"""video-nonlocal-net Caffe2 pickles (I3D-ResNet-50/101, with or without non-local blocks).

Blob names (``resnet_video.py``, ``resnet_helper.py``, ``nonlocal_helper.py``)::

    conv1_w, res_conv1_bn_{s,b,rm,riv}
    res<stage>_<block>_branch2{a,b,c}_w, res<stage>_<block>_branch2{a,b,c}_bn_*     (stage 2..5)
    res<stage>_<block>_branch1_w, res<stage>_<block>_branch1_bn_*                    (projection shortcut)
    nonlocal_conv<stage>_<block>_{theta,phi,g,out}_{w,b}, nonlocal_conv<stage>_<block>_bn_*
    pred_w, pred_b

2D (ImageNet, Caffe2) kernels are inflated like the repo's loader does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.models.weights.caffe2_blobs import blobs_of, convert_blobs, param_blob

_RULES = [
    (re.compile(r"conv1\.(\w+)$"), lambda m: param_blob("conv1", m[1], False)),
    (re.compile(r"bn1\.(\w+)$"), lambda m: param_blob("res_conv1_bn", m[1], True)),
    # bottleneck convs and their BN: layerL.B.conv2 -> res{L+1}_B_branch2b, layerL.B.bn2 -> ..._branch2b_bn
    (re.compile(r"layer(\d)\.(\d+)\.(conv|bn)(\d)\.(\w+)$"),
     lambda m: param_blob(f"res{int(m[1]) + 1}_{m[2]}_branch2{'abc'[int(m[4]) - 1]}{'_bn' * (m[3] == 'bn')}", m[5],
                          m[3] == "bn")),
    # the projection shortcut: downsample.0 (conv) -> res{L+1}_B_branch1, downsample.1 (BN) -> ..._branch1_bn
    (re.compile(r"layer(\d)\.(\d+)\.downsample\.([01])\.(\w+)$"),
     lambda m: param_blob(f"res{int(m[1]) + 1}_{m[2]}_branch1{'_bn' * (m[3] == '1')}", m[4], m[3] == "1")),
    (re.compile(r"nonlocal_blocks\.layer(\d)_(\d+)\.(theta|phi|g|out)\.(\w+)$"),
     lambda m: param_blob(f"nonlocal_conv{int(m[1]) + 1}_{m[2]}_{m[3]}", m[4], False)),
    (re.compile(r"nonlocal_blocks\.layer(\d)_(\d+)\.bn\.(\w+)$"),
     lambda m: param_blob(f"nonlocal_conv{int(m[1]) + 1}_{m[2]}_bn", m[3], True)),
    (re.compile(r"fc\.(\w+)$"), lambda m: param_blob("pred", m[1], False)),
]


def detect(obj: Any) -> bool:
    """video-nonlocal-net (and Caffe2 ImageNet ResNet) pickles have ``res_conv1_bn_*``/``res2_0_*`` blobs."""
    blobs = blobs_of(obj)
    return blobs is not None and any(k.startswith(("res_conv1_bn", "res2_0_branch2a")) for k in blobs)


def blob_name(key: str) -> str | None:
    """Caffe2 blob name of an :class:`vidrec.models.i3d.I3DResNet` state-dict key (None if unknown)."""
    for pattern, name in _RULES:
        match = pattern.match(key)
        if match:
            return name(match)
    return None


def convert(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """video-nonlocal-net blobs -> I3D-ResNet state dict."""
    return convert_blobs(obj, model, path, blob_name)
