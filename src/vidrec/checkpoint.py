"""Checkpoint files: atomic writes, safe reads (``weights_only=True``), and ``ckpt_path=last`` resolution."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from vidrec.errors import CheckpointError
from vidrec.io import atomic_open


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO that writes to a temporary file and renames it into place.

    A crash or a full disk while saving leaves the previous checkpoint of that name intact.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        with atomic_open(path, "wb") as handle:
            torch.save(checkpoint, handle)

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint(path, map_location)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint without running pickled code; errors name the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass ckpt_path=<run dir>/checkpoints/last.ckpt")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to load — it contains objects other than tensors and plain containers "
            f"({str(exc).splitlines()[0]}); only load checkpoints you trust, and re-save their state dict"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {exc}); use another checkpoint") from None


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | os.PathLike) -> str | None:
    """``last`` → ``<output_dir>/checkpoints/last.ckpt``; a run dir → its ``checkpoints/last.ckpt``; else unchanged."""
    if ckpt_path in (None, "", "null"):
        return None
    candidate = Path(output_dir) / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(str(ckpt_path))
    if candidate.is_dir():
        candidate = candidate / "checkpoints" / "last.ckpt"
    if not candidate.is_file():
        raise CheckpointError(f"ckpt_path={ckpt_path}: no checkpoint at {candidate}")
    return str(candidate)


def export_weights(ckpt_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write the model's state dict alone (``.pt``, no optimizer, no pickled objects) for sharing."""
    ckpt = load_checkpoint(ckpt_path)
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    with atomic_open(out_path, "wb") as handle:
        torch.save(state, handle)
    return Path(out_path)
