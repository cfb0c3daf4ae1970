"""Checkpoint files: atomic writes, safe reads (``weights_only=True``), and ``ckpt_path=last`` resolution."""

from __future__ import annotations

import os
import pickle
import shutil
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
        try:
            with atomic_open(path, "wb") as handle:
                torch.save(checkpoint, handle)
        except (OSError, RuntimeError) as exc:  # torch reports a failed write as RuntimeError("... unexpected pos ...")
            folder = Path(path).parent
            free = shutil.disk_usage(folder).free / 2**20 if folder.is_dir() else float("nan")
            raise CheckpointError(
                f"{path}: writing the checkpoint failed ({exc}; {free:.0f} MiB free in {folder}); any previous "
                f"{Path(path).name} is intact — free disk space, then resume with ckpt_path=last"
            ) from exc

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
        detail = _unpickling_detail(exc)
        if "GLOBAL" not in detail:  # not a refused object: random bytes that are no pickle either
            raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {detail}); "
                                  "use another checkpoint") from None
        raise CheckpointError(
            f"{path}: refused to load — it contains objects other than tensors and plain containers "
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


def model_state(ckpt: dict[str, Any], path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The network's weights in a train.py checkpoint: its LightningModule's ``model.*`` entries, prefix removed."""
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: no state_dict, so not a train.py checkpoint; to start from these weights "
                              f"use model.pretrained={path} instead of ckpt_path")
    return {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}


def run_config(ckpt: dict[str, Any], path: str | os.PathLike) -> dict[str, Any]:
    """The resolved training config that train.py stores in its checkpoints."""
    cfg = (ckpt.get("hyper_parameters") or {}).get("config")
    if not cfg:
        raise CheckpointError(f"{path}: no vidrec config in this checkpoint; was it written by train.py?")
    return cfg


def check_model_fits(net: torch.nn.Module, ckpt_path: str | os.PathLike | None, model_name: str = "") -> None:
    """Check that a train.py checkpoint holds weights for ``net`` (the LightningModule's ``model``).

    A checkpoint of another model, or a file that is no training checkpoint, raises a :class:`CheckpointError`
    naming the first differing keys, before Lightning's restore fails with a long traceback.
    """
    if not ckpt_path:
        return
    from vidrec.models.weights.common import apply_state_dict

    weights = model_state(load_checkpoint(ckpt_path), ckpt_path)
    report = apply_state_dict(net, weights, ckpt_path, "train.py checkpoint", strict=False)
    problems = [f"{kind} keys {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''} ({len(keys)} in all)"
                for kind, keys in (("shape-mismatched", report.mismatched), ("missing", report.missing),
                                   ("unexpected", report.unexpected)) if keys]
    if problems:
        raise CheckpointError(
            f"{ckpt_path} does not fit model.net.name={model_name or type(net).__name__}: {'; '.join(problems)}; "
            "it was trained with another model — pass the model of its run (see its .hydra/config.yaml)"
        )


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


def resolve_resume_path(ckpt_path: str | None, output_dir: str | os.PathLike) -> str | None:
    """:func:`resolve_ckpt_path` for train.py, plus ``auto``: ``<output_dir>/checkpoints/last.ckpt`` when it
    exists, else a fresh start — the setting for jobs that a cluster may requeue into the same run dir."""
    if ckpt_path == "auto":
        last = Path(output_dir) / "checkpoints" / "last.ckpt"
        return str(last) if last.is_file() else None
    return resolve_ckpt_path(ckpt_path, output_dir)


def export_weights(ckpt_path: str | os.PathLike, out_path: str | os.PathLike, ckpt: dict[str, Any] | None = None) -> Path:
    """Write the model's state dict alone (``.pt``, no optimizer, no pickled objects) for sharing.

    ``ckpt``: the checkpoint already loaded from ``ckpt_path``, so that it is not read twice.
    """
    state = model_state(ckpt if ckpt is not None else load_checkpoint(ckpt_path), ckpt_path)
    with atomic_open(out_path, "wb") as handle:
        torch.save(state, handle)
    return Path(out_path)
