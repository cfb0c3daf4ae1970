"""VMZ Caffe2 pickles (R(2+1)D, R3D, MC3; facebookresearch/VMZ ``video_model.py`` blob names).

Blocks are numbered globally (``comp_<i>``), convs within a block from 1 (``conv_<j>``)::

    stem       conv1_middle_w, conv1_middle_spatbn_relu_{s,b,rm,riv}, conv1_w, conv1_spatbn_relu_*
    block i    comp_i_conv_j_middle_w, comp_i_spatbn_j_middle_*, comp_i_conv_j_w, comp_i_spatbn_j_*
    shortcut   shortcut_projection_i_w, shortcut_projection_i_spatbn_*
    classifier last_out_L<classes>_w, last_out_L<classes>_b

VMZ's BatchNorm epsilon is 1e-3: the converter sets it on the model's BatchNorm layers.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.models.weights.caffe2_blobs import blobs_of, convert_blobs, param_blob

log = logging.getLogger(__name__)

VMZ_BN_EPS = 1e-3
_STEM = {6: {0: ("conv1_middle", False), 1: ("conv1_middle_spatbn_relu", True), 3: ("conv1", False),
             4: ("conv1_spatbn_relu", True)},
         3: {0: ("conv1", False), 1: ("conv1_spatbn_relu", True)}}
_BLOCK = re.compile(r"layer(\d)\.(\d+)\.(.+)\.(\w+)$")


def detect(obj: Any) -> bool:
    """VMZ pickles have ``conv1_spatbn_relu_*`` or ``comp_*`` blobs."""
    blobs = blobs_of(obj)
    return blobs is not None and any(k.startswith(("conv1_spatbn_relu", "comp_0_")) for k in blobs)


def _block_blob(comp: int, inner: str, attr: str) -> str | None:
    """``conv1.0.0`` -> comp_i_conv_1_middle ... (inner = module path inside a BasicBlock)."""
    parts = inner.split(".")
    if parts[0] == "downsample":
        return param_blob(f"shortcut_projection_{comp}" + ("_spatbn" if parts[1] == "1" else ""), attr,
                          parts[1] == "1")
    j = parts[0][-1]
    if parts[1] == "1":  # the BN after the conv
        return param_blob(f"comp_{comp}_spatbn_{j}", attr, True)
    if len(parts) == 2:  # a single 3D / 2D conv
        return param_blob(f"comp_{comp}_conv_{j}", attr, False)
    return {"0": param_blob(f"comp_{comp}_conv_{j}_middle", attr, False),  # (2+1)D: spatial conv
            "1": param_blob(f"comp_{comp}_spatbn_{j}_middle", attr, True),
            "3": param_blob(f"comp_{comp}_conv_{j}", attr, False)}.get(parts[2])


def convert(obj: Any, model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """VMZ blobs -> :class:`vidrec.models.video_resnet.VideoResNet` state dict."""
    offsets, total = {}, 0
    for i in range(1, 5):
        offsets[i] = total
        total += len(getattr(model, f"layer{i}", ()))
    heads = [k[:-2] for k in blobs_of(obj) or {} if re.fullmatch(r"last_out_L\d+_w", k)]
    head = heads[0] if heads else f"last_out_L{model.fc.out_features}"
    stem = _STEM.get(len(getattr(model, "stem", ())), {})

    def blob_name(key: str) -> str | None:
        module, attr = key.rsplit(".", 1)
        if module == "fc":
            return param_blob(head, attr, False)
        if module.startswith("stem."):
            prefix, is_bn = stem.get(int(module.split(".")[1]), (None, False))
            return param_blob(prefix, attr, is_bn) if prefix else None
        match = _BLOCK.match(key)
        if match is None:
            return None
        layer, block, inner, attr = match.groups()
        return _block_blob(offsets[int(layer)] + int(block), inner, attr)

    converted = convert_blobs(obj, model, path, blob_name)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.eps = VMZ_BN_EPS
    log.info("%s: BatchNorm eps set to %g as in VMZ", path, VMZ_BN_EPS)
    return converted
