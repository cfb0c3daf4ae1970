"""Lightning callbacks for exact, resumable runs: checkpoints that survive a move to a new run dir,
``last.ckpt`` after every epoch, and the global random state saved in every checkpoint."""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

log = logging.getLogger(__name__)


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that keeps its record (best score, best path) when a run resumes in another directory.

    Lightning forgets the best score when ``dirpath`` changed, so a run resumed into a new Hydra run dir would
    call its first new epoch "best" and test that one. Here the old record is kept: the old run's best file
    stays the reference until a new epoch beats it (Lightning never deletes files outside ``dirpath``).
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if old and self.dirpath and old != self.dirpath:
            log.info("resuming in %s; best checkpoint so far: %s (%s=%s)", self.dirpath,
                     state_dict.get("best_model_path"), self.monitor, state_dict.get("best_model_score"))
            state_dict = {**state_dict, "dirpath": self.dirpath, "last_model_path": ""}
        super().load_state_dict(state_dict)


class LastCheckpoint(RunCheckpoint):
    """``<dirpath>/last.ckpt``, rewritten (atomically, by the checkpoint IO) at the end of every epoch.

    Lightning 2.6's ``save_last`` only rewrites ``last.ckpt`` when a top-k checkpoint was saved in the same
    step, so a run whose validation stops improving would resume from a stale epoch.
    """

    def __init__(self, dirpath: str, filename: str = "last"):
        super().__init__(dirpath=dirpath, filename=filename, monitor=None, save_top_k=1, every_n_epochs=1,
                         save_last=False, auto_insert_metric_name=False, enable_version_counter=False)

    @property
    def state_key(self) -> str:
        return self._generate_state_key(role="last", filename=self.filename)


def _rng_state() -> dict[str, Any]:
    """The global random state of torch (CPU and CUDA), numpy and Python, as tensors and plain containers
    (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


class RNGState(Callback):
    """Saves the global random state in every checkpoint and puts it back when training resumes.

    The data pipeline draws nothing from the global generators (its randomness is a function of
    (seed, epoch, index)); what does — dropout, stochastic depth, anything in the model — continues where
    the interrupted run stopped. The state is restored at ``on_train_start``, after the sanity check, so
    that the resumed run draws exactly the numbers the unbroken run drew. All ranks hold the same state
    (same seed, same draws), so rank 0's is restored everywhere.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return _rng_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending is not None:
            _set_rng_state(self._pending)
            self._pending = None
