"""Detectors of the release layouts that several model families share (each reads the raw checkpoint object).

=================  ============================================================================================
format             what the file holds
=================  ============================================================================================
``pyslowfast``     PySlowFast ``.pyth``: ``{'model_state': ..., 'cfg': ...}``, PySlowFast's key names
                   (``s1.pathway0_stem.conv.weight``, ``patch_embed.proj.weight``, ``head.projection.weight``)
``pytorchvideo``   pytorchvideo's model zoo ``.pyth``: ``{'model_state': ...}`` with its ``blocks.<i>...`` names
                   (MViT: ``cls_positional_encoding.*``, ``patch_embed.patch_model.*``)
``timesformer``    TimeSformer authors' ``.pyth``: ``model_state`` keys under ``model.`` (``model.time_embed``)
``mmaction2``      mmaction2 (and Video-Swin-Transformer) ``.pth``: ``{'state_dict': {'backbone.*', 'cls_head.*'}}``
``tsm``            TSM authors' ``.pth``: ``{'state_dict': {'module.base_model.*', 'module.new_fc.*'}, 'arch'}``
``videomae``       VideoMAE authors' ``.pth``: ``{'model' | 'module': {...}}`` with ``blocks.<i>.attn.q_bias`` (pre-training
                   checkpoints: the same under ``encoder.``, beside ``decoder.*``)
``swin2d_imagenet`` the Swin-Transformer authors' 2D ImageNet ``.pth`` (``layers.<i>.blocks.<j>``), inflated to Swin3D
``huggingface``    Hugging Face: a folder with ``config.json`` and ``model.safetensors`` / ``pytorch_model.bin``,
                   or the weights file alone (``videomae.*``, ``timesformer.*``, ``classifier.*`` keys)
=================  ============================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vidrec.models.weights.common import HF_CONFIG
from vidrec.models.weights.torch_state import find_mapping


def _keys(obj: Any, wrapper: str | None = None) -> list[str]:
    """Raw key names of the state dict inside ``obj`` (under ``wrapper`` when given), no prefix stripped."""
    if wrapper is not None:
        obj = obj.get(wrapper) if isinstance(obj, Mapping) else None
    mapping = find_mapping(obj) if obj is not None else None
    return [str(k) for k in mapping] if mapping is not None else []


def model_state_keys(obj: Any) -> list[str]:
    """Keys of a PySlowFast-style ``{'model_state': ...}`` checkpoint (empty for any other object)."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("model_state"), Mapping):
        return []
    return [str(k) for k in obj["model_state"]]


def is_timesformer(obj: Any) -> bool:
    keys = model_state_keys(obj)
    return any(k.startswith("model.") for k in keys) and any(k in ("model.time_embed", "model.pos_embed") for k in keys)


def is_pytorchvideo(obj: Any) -> bool:
    keys = model_state_keys(obj)
    if any(k.startswith(("cls_positional_encoding.", "patch_embed.patch_model.")) for k in keys):
        return True  # pytorchvideo's MViT
    return bool(keys) and all(k.startswith("blocks.") for k in keys) and not any(".attn." in k for k in keys)


def is_pyslowfast(obj: Any) -> bool:
    keys = model_state_keys(obj)
    return bool(keys) and not is_pytorchvideo(obj) and not is_timesformer(obj)


def is_mmaction2(obj: Any) -> bool:
    keys = _keys(obj)
    return any(k.startswith("backbone.") for k in keys) and all(
        k.startswith(("backbone.", "cls_head.", "data_preprocessor.")) for k in keys)


def is_tsm(obj: Any) -> bool:
    return any(".base_model." in f".{k}" for k in _keys(obj))


def is_videomae(obj: Any) -> bool:
    if not isinstance(obj, Mapping):
        return False
    keys = next((_keys(obj, w) for w in ("model", "module") if isinstance(obj.get(w), Mapping)), _keys(obj))
    keys = [k.removeprefix("encoder.") for k in keys]  # a pre-training checkpoint: encoder.* and decoder.*
    return any(k.endswith(".attn.q_bias") for k in keys) and any(k.startswith("patch_embed.") for k in keys)


def is_huggingface(obj: Any) -> bool:
    if isinstance(obj, Mapping) and HF_CONFIG in obj:
        return True
    keys = _keys(obj)
    return bool(keys) and any(k.startswith(("videomae.", "timesformer.")) for k in keys)


def is_swin2d_imagenet(obj: Any) -> bool:
    """The Swin-Transformer authors' ImageNet release: ``{'model': {...}}`` with ``layers.<i>.blocks.<j>`` keys and a
    2D patch embedding (what Video Swin fine-tunes from)."""
    mapping = find_mapping(obj)
    if mapping is None or "layers.0.blocks.0.attn.relative_position_bias_table" not in mapping:
        return False
    return getattr(mapping.get("patch_embed.proj.weight"), "ndim", 0) == 4
