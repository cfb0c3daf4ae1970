"""Reading checkpoint files and loading converted state dicts into a model."""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidrec.errors import CheckpointError
from vidrec.models.weights.safe_pickle import load_pickle

log = logging.getLogger(__name__)

HEAD_PREFIX = "fc."  # every vidrec model keeps its classifier in the nn.Linear ``fc``
_LEGACY_TORCH_MAGIC = b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did: the format, and the keys it could not match."""

    path: str
    format: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    head_replaced: bool = False
    entry: str | None = None  # the registry entry the file was recognised as

    def __str__(self) -> str:
        text = (f"{self.path} ({self.format}): {len(self.loaded)} tensors loaded, {len(self.missing)} missing, "
                f"{len(self.unexpected)} unexpected, {len(self.mismatched)} shape-mismatched")
        return text + (", classifier head kept from the model" if self.head_replaced else "")


#: Plain-data classes some releases pickle beside their weights (the VideoMAE authors save their ``argparse``
#: arguments): admitted by the weights-only unpickler, which only sets their attributes.
SAFE_GLOBALS = [argparse.Namespace]


def load_torch(path: str | Path, map_location: Any = "cpu") -> Any:
    """The one reader of torch files: ``torch.load(weights_only=True)``, never running pickled code; errors
    name the file and say whether it is corrupt or holds objects other than tensors and containers."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _unpickling_detail(exc)
        if "GLOBAL" not in detail:  # not a refused object: random bytes that are no pickle either
            raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {detail}); "
                                  "use another checkpoint") from None
        raise CheckpointError(
            f"{path}: refused to load (weights_only=True) — it contains objects other than tensors and plain containers "
            f"({detail}); only load checkpoints you trust, and re-save their state dict"
        ) from None
    except Exception as exc:  # RuntimeError, EOFError, BadZipFile, OSError, ValueError... for truncated/garbage files
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {exc}); use another checkpoint") from None


def _unpickling_detail(exc: Exception) -> str:
    """The informative line of torch's weights-only refusal (e.g. "Trying to load unsupported GLOBAL posix.system
    ..."), without its generic preamble and documentation pointer."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line.split("WeightsUnpickler error:")[-1].strip() for line in lines
              if not line.startswith(("Weights only load failed", "Check the documentation"))]
    return "; ".join(part for part in useful if part) or (lines[0] if lines else type(exc).__name__)


def is_torch_file(path: str | Path) -> bool:
    """A torch checkpoint (zip archive or the legacy format), as opposed to a plain pickle."""
    with Path(path).open("rb") as f:
        head = f.read(32)
    return zipfile.is_zipfile(path) or _LEGACY_TORCH_MAGIC in head


def is_plain_pickle(path: str | Path) -> bool:
    """A pickle that is no torch file (Caffe2 and JAX releases): it starts like a pickle, not like a zip archive."""
    with Path(path).open("rb") as f:
        head = f.read(32)
    return bool(head) and head[:1] in (b"\x80", b"(", b"}") and not head.startswith(b"PK") and _LEGACY_TORCH_MAGIC not in head


HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
HF_CONFIG = "hf_config"  # the key under which read_checkpoint puts a Hugging Face folder's config.json


def is_safetensors(path: str | Path) -> bool:
    """A safetensors file: an 8-byte little-endian header length, then a JSON header."""
    with Path(path).open("rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < (1 << 31)


def load_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file (read by the ``safetensors`` package: no pickle involved)."""
    try:
        from safetensors.torch import load_file
    except ImportError:  # pragma: no cover - a dependency of vidrec
        raise CheckpointError(f"{path}: reading safetensors files needs the safetensors package: pip install safetensors") from None
    try:
        return load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc}); use another copy") from None


def read_hf_folder(path: Path) -> dict[str, Any]:
    """A Hugging Face model folder: ``{'hf_config': config.json, 'state_dict': weights}`` (safetensors first)."""
    config = path / "config.json"
    weights = next((path / name for name in HF_WEIGHTS if (path / name).is_file()), None)
    if not config.is_file() or weights is None:
        raise CheckpointError(f"{path}: a folder of weights needs config.json and {' or '.join(HF_WEIGHTS)} (the "
                              "Hugging Face layout); give the weights file itself otherwise")
    try:
        cfg = json.loads(config.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{config}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
    state = load_safetensors(weights) if is_safetensors(weights) else load_torch(weights)
    return {HF_CONFIG: cfg, "state_dict": state}


def read_checkpoint(path: str | Path) -> Any:
    """Read a torch file (:func:`load_torch`), a safetensors file, a Hugging Face folder or a numpy pickle
    (restricted unpickler)."""
    path = Path(path)
    if path.is_dir():
        return read_hf_folder(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if is_safetensors(path):
        return load_safetensors(path)
    return load_torch(path) if is_torch_file(path) else load_pickle(path)


def to_tensor(value: Any, path: str | Path, key: str) -> torch.Tensor:
    """A numpy array or tensor as a CPU tensor (copied, so the checkpoint's buffers are not shared)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray | np.generic):
        return torch.from_numpy(np.array(value, copy=True))
    raise CheckpointError(f"{path}: entry {key!r} is {type(value).__name__}, expected an array")


def _first(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f" ... (+{len(keys) - n})" if len(keys) > n else "")


def apply_state_dict(model: nn.Module, converted: Mapping[str, torch.Tensor], path: str | Path, fmt: str,
                     strict: bool = True, skip_head: bool = False) -> LoadReport:
    """Copy ``converted`` (model key -> tensor) into ``model``; check keys and shapes.

    ``skip_head=True`` keeps the model's own classifier ``fc`` (e.g. a new class count for fine-tuning);
    without it a head of another shape is an error (``strict=False``: skipped and reported like any
    mismatch). ``strict=False`` loads what matches and reports the rest.
    """
    target = model.state_dict()
    report = LoadReport(str(path), fmt)
    ckpt_head = [k for k in converted if k.startswith(HEAD_PREFIX)]
    if skip_head:
        converted = {k: v for k, v in converted.items() if not k.startswith(HEAD_PREFIX)}
        report.head_replaced = True
        log.info("%s: classifier head %s not loaded; the model's own fc is kept", path, ckpt_head or "absent")
    report.missing, report.unexpected, report.mismatched = compare_state(target, converted, skip_head)
    head_mismatch = [m for m in report.mismatched if m.startswith(HEAD_PREFIX)]
    only_head = len(head_mismatch) == len(report.mismatched) and not report.missing and not report.unexpected
    if head_mismatch and strict and only_head:  # else the whole model differs: the general message below says so
        raise CheckpointError(f"{path}: classifier head does not match the model ({_first(head_mismatch)}); "
                              "pass skip_head=True to keep the model's head (fine-tuning)")
    if strict and (report.mismatched or report.missing or report.unexpected):
        problems = [f"shape mismatch: {_first(report.mismatched)}" if report.mismatched else "",
                    f"missing in checkpoint: {_first(report.missing)}" if report.missing else "",
                    f"unexpected in checkpoint: {_first(report.unexpected)}" if report.unexpected else ""]
        raise CheckpointError(f"{path} ({fmt}) does not match {type(model).__name__}: "
                              + "; ".join(p for p in problems if p))
    bad = {m.split(":")[0] for m in report.mismatched}
    with torch.no_grad():
        for key, value in converted.items():
            if key in target and key not in bad:
                target[key].copy_(value.to(target[key].dtype))
                report.loaded.append(key)
    for kind in ("missing", "unexpected", "mismatched"):
        if getattr(report, kind):
            log.warning("%s: %d %s keys: %s", path, len(getattr(report, kind)), kind, _first(getattr(report, kind)))
    log.info("%s", report)
    return report


def compare_state(target: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor],
                  skip_head: bool = False) -> tuple[list[str], list[str], list[str]]:
    """Keys of ``target`` (a model's state dict) that ``given`` lacks, keys it has that ``target`` lacks, and
    shape mismatches (``"key: checkpoint (…) vs model (…)"``); nothing is copied."""
    unexpected = [k for k in given if k not in target]
    mismatched = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(target[k].shape)}"
                  for k, v in given.items() if k in target and v.shape != target[k].shape]
    missing = [k for k in target if k not in given and not k.endswith("num_batches_tracked")
               and not (skip_head and k.startswith(HEAD_PREFIX))]
    return missing, unexpected, mismatched


def inflate(weight: torch.Tensor, frames: int) -> torch.Tensor:
    """A 2D conv kernel (O, I, H, W) repeated over ``frames`` and divided by it (O, I, T, H, W).

    The I3D initialisation: on a static clip the inflated conv gives the 2D conv's response.
    """
    return weight.unsqueeze(2).repeat(1, 1, frames, 1, 1) / frames
