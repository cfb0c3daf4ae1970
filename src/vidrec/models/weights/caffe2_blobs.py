"""Shared by the Caffe2 converters: blob dictionaries (``{'blobs': {name: ndarray}}``) to state dicts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidrec.errors import CheckpointError
from vidrec.models.weights.common import HEAD_PREFIX, inflate, to_tensor

log = logging.getLogger(__name__)

# torch BatchNorm attribute -> Caffe2 SpatialBN blob suffix ("_riv" holds the running variance)
BN_SUFFIX = {"weight": "_s", "bias": "_b", "running_mean": "_rm", "running_var": "_riv"}
_TRAINING_STATE = {"lr", "model_iter"}


def blobs_of(obj: Any) -> Mapping[str, Any] | None:
    """The name -> array mapping of a Caffe2 pickle (``{'blobs': {...}}`` or the bare mapping), else None."""
    if isinstance(obj, Mapping) and isinstance(obj.get("blobs"), Mapping):
        obj = obj["blobs"]
    if (isinstance(obj, Mapping) and obj and all(isinstance(k, str) for k in obj)
            and any(isinstance(v, np.ndarray) for v in obj.values())):
        return obj
    return None


def param_blob(prefix: str, attr: str, is_bn: bool) -> str:
    """Blob name of a conv/FC parameter (``_w``/``_b``) or a SpatialBN tensor (``_s``/``_b``/``_rm``/``_riv``)."""
    if is_bn:
        return prefix + BN_SUFFIX[attr]
    return prefix + ("_w" if attr == "weight" else "_b")


def _fit(value: torch.Tensor, target: torch.Tensor, key: str) -> torch.Tensor:
    """Inflate a 2D kernel into a 3D one, or reshape a conv-shaped classifier to the Linear's shape."""
    if value.ndim == 4 and target.ndim == 5 and value.shape[:2] == target.shape[:2] \
            and value.shape[2:] == target.shape[3:]:
        return inflate(value, target.shape[2])
    if key.startswith(HEAD_PREFIX) and value.ndim != target.ndim and value.numel() == target.numel():
        return value.reshape(target.shape)
    return value


def convert_blobs(obj: Any, model: nn.Module, path: str | Path,
                  blob_name: Callable[[str], str | None]) -> dict[str, torch.Tensor]:
    """Map every model key through ``blob_name`` and collect the blobs.

    Training state (``lr``, ``model_iter``, ``*_momentum``) is ignored; blobs no model key asked for are
    returned under their own names so that the load reports them as unexpected. A BatchNorm stored as
    an affine layer (``_s``/``_b`` without running statistics) gets mean 0 and variance 1 - eps, which
    makes it exactly the affine map.
    """
    blobs = blobs_of(obj)
    if blobs is None:
        raise CheckpointError(f"{path}: not a Caffe2 blob dictionary")
    blobs = {k: v for k, v in blobs.items() if k not in _TRAINING_STATE and not k.endswith("_momentum")}
    unused = set(blobs)
    converted: dict[str, torch.Tensor] = {}
    affine_bn = 0
    for key, target in model.state_dict().items():
        name = None if key.endswith("num_batches_tracked") else blob_name(key)
        if name is None:
            continue
        if name in blobs:
            converted[key] = _fit(to_tensor(blobs[name], path, name), target, key)
            unused.discard(name)
        elif name.endswith(("_rm", "_riv")) and name.rsplit("_", 1)[0] + "_s" in blobs:
            eps = model.get_submodule(key.rsplit(".", 1)[0]).eps
            converted[key] = torch.zeros_like(target) if name.endswith("_rm") else torch.full_like(target, 1 - eps)
            affine_bn += 1
    if affine_bn:
        log.info("%s: %d affine BatchNorm statistics (no running mean/var) set to the identity", path, affine_bn)
    converted.update({name: to_tensor(blobs[name], path, name) for name in sorted(unused)})
    return converted
