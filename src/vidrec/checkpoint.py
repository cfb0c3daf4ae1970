"""Checkpoint files: atomic writes, safe reads (``weights_only=True``), and ``ckpt_path=last`` resolution."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from vidrec.errors import CheckpointError
from vidrec.files import atomic_open, free_bytes
from vidrec.models.weights.common import compare_state, is_plain_pickle, load_torch
from vidrec.models.weights.torch_state import unwrap_state_dict


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
            free = free_bytes(folder)
            free_mib = free / 2**20 if free is not None else float("nan")
            raise CheckpointError(
                f"{path}: writing the checkpoint failed ({exc}; {free_mib:.0f} MiB free in {folder}); any previous "
                f"{Path(path).name} is intact — free disk space, then resume with ckpt_path=last"
            ) from exc

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint(path, map_location)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint without running pickled code; errors name the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass ckpt_path=<run dir>/checkpoints/last.ckpt")
    if is_plain_pickle(path):
        raise CheckpointError(f"{path} is not a train.py checkpoint but a plain pickle, as released Caffe2 and JAX "
                              f"weights are; use them with model=<group> model.pretrained={path}")
    return load_torch(path, map_location)


def is_training_checkpoint(ckpt: Any) -> bool:
    """A checkpoint train.py wrote: a LightningModule state dict and the run's config."""
    return isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict"), dict) and bool(
        (ckpt.get("hyper_parameters") or {}).get("config"))


def model_state(ckpt: dict[str, Any], path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The network's weights in a train.py checkpoint: its LightningModule's ``model.*`` entries, prefix removed."""
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: no state_dict, so not a train.py checkpoint; to start from these weights "
                              f"use model.pretrained={path} instead of ckpt_path")
    return unwrap_state_dict({k: v for k, v in state.items() if k.startswith("model.")}, path)


def ema_state_dict(ckpt: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    """The averaged weights a train.py checkpoint holds (the EMA callback's, keys as the LightningModule's
    ``state_dict``), or None."""
    for key, state in (ckpt.get("callbacks") or {}).items():
        if str(key).startswith("EMA") and isinstance(state, dict) and state.get("shadow"):
            return state["shadow"]
    return None


def scored_state(ckpt: dict[str, Any], path: str | os.PathLike, cfg: dict[str, Any]) -> tuple[dict[str, torch.Tensor], str]:
    """The network weights eval.py, predict.py, extract.py and export.py use: the EMA average where the run kept
    one and evaluated with it (``callbacks.<name>._target_ = vidrec.ema.EMA``, ``evaluate`` true), as the run's own
    validation and test did, else the trained weights; and which it is (``"ema"`` or ``"trained"``)."""
    ema_cfgs = [c for c in (cfg.get("callbacks") or {}).values()
                if isinstance(c, dict) and str(c.get("_target_", "")).endswith("ema.EMA")]
    shadow = ema_state_dict(ckpt)
    if shadow is not None and ema_cfgs and ema_cfgs[0].get("evaluate", True):
        return unwrap_state_dict({k: v for k, v in shadow.items() if k.startswith("model.")}, path), "ema"
    return model_state(ckpt, path), "trained"


def run_config(ckpt: dict[str, Any], path: str | os.PathLike) -> dict[str, Any]:
    """The resolved training config that train.py stores in its checkpoints."""
    cfg = (ckpt.get("hyper_parameters") or {}).get("config")
    if not cfg:
        raise CheckpointError(f"{path}: no vidrec config in this checkpoint; was it written by train.py? "
                              f"(released weights: model=<group> model.pretrained={path})")
    return cfg


def check_model_fits(net: torch.nn.Module, weights: dict[str, torch.Tensor], path: str | os.PathLike,
                     model_name: str = "") -> None:
    """Check that ``weights`` (:func:`model_state` of a train.py checkpoint) fit ``net``; nothing is copied.

    Weights of another model raise a :class:`CheckpointError` naming the first differing keys, before
    Lightning's restore fails with a long traceback.
    """
    missing, unexpected, mismatched = compare_state(net.state_dict(), weights)
    problems = [f"{kind} keys {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''} ({len(keys)} in all)"
                for kind, keys in (("shape-mismatched", mismatched), ("missing", missing),
                                   ("unexpected", unexpected)) if keys]
    if problems:
        raise CheckpointError(
            f"{path} does not fit model.net.name={model_name or type(net).__name__}: {'; '.join(problems)}; "
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
