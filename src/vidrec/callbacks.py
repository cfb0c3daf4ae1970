"""Lightning callbacks: for exact, resumable runs, checkpoints that survive a move to a new run dir,
``last.ckpt`` after every epoch and the global random state saved in every checkpoint; and the data-wait
accounting of every run (:class:`DataWait`)."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

log = logging.getLogger(__name__)


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that keeps its record (best score, best path) when a run resumes in another directory,
    and breaks ties of the monitored metric with a second one (``tie_break``, lower is better; ``save_top_k=1``).

    Lightning forgets the best score when ``dirpath`` changed, so a run resumed into a new Hydra run dir would
    call its first new epoch "best" and test that one. Here the old record is kept: the old run's best file
    stays the reference until a new epoch beats it (Lightning never deletes files outside ``dirpath``).
    Without a tie break, the first epoch to reach a value keeps it: a small validation set that reaches top-1
    1.0 halfway through training would keep that half-trained epoch as the best.
    """

    def __init__(self, *args: Any, tie_break: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tie_break = tie_break
        self.best_tie: float | None = None  # the tie-break metric of the best checkpoint

    def check_monitor_top_k(self, trainer: pl.Trainer, current: torch.Tensor | None = None) -> bool:
        if super().check_monitor_top_k(trainer, current):
            return True
        if not self.tie_break or current is None or self.save_top_k != 1 or not self.best_k_models:
            return False
        tie = trainer.callback_metrics.get(self.tie_break)
        better = (tie is not None and self.best_tie is not None and float(tie) < self.best_tie
                  and bool(current == self.best_k_models[self.kth_best_model_path]))
        return trainer.strategy.reduce_boolean_decision(better)

    def _update_best_and_save(self, current: torch.Tensor, trainer: pl.Trainer,
                              monitor_candidates: dict[str, torch.Tensor]) -> None:
        tie = monitor_candidates.get(self.tie_break) if self.tie_break else None
        self.best_tie = float(tie) if tie is not None else None
        super()._update_best_and_save(current, trainer, monitor_candidates)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best_tie": self.best_tie}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_tie = state_dict.get("best_tie")
        old = state_dict.get("dirpath")
        if old and self.dirpath and old != self.dirpath:
            log.info("resuming in %s; best checkpoint so far: %s (%s=%s)", self.dirpath,
                     state_dict.get("best_model_path"), self.monitor, state_dict.get("best_model_score"))
            state_dict = {**state_dict, "dirpath": self.dirpath, "last_model_path": ""}
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "best_tie"})


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


class DataWait(Callback):
    """Where each step's time goes: waiting for the loader or computing, per epoch (training) and per test.

    The time from the end of one batch to the start of the next is waiting (the loader had no batch ready);
    the time from a batch's start to its end is computing. At the end of each training epoch the share spent
    waiting and the clips per second are logged (``time/data_wait_frac``, ``time/clips_per_s``) and printed on
    one line; the test logs ``time/views_per_s`` and ``time/test_data_wait_frac`` and keeps them in
    :attr:`test_throughput` (for results.json). When a training epoch waits more than ``warn_above`` of the
    time, one warning (once per run) says what helps. Under DDP the logged figures are the mean over processes,
    the printed ones and the warning rank 0's. The wait for an epoch's first batch (worker start-up) is not
    between two steps and is not counted; on a GPU, kernels still queued at a batch's end count as waiting.
    """

    def __init__(self, warn_above: float = 1 / 3):
        self.warn_above = warn_above
        self.warned = False
        self.test_throughput: dict[str, float] | None = None
        self._reset()

    def _reset(self) -> None:
        self._wait = self._busy = 0.0
        self._items = 0
        self._start: float | None = None
        self._end: float | None = None
        self._paused: float | None = None

    def _batch_start(self) -> None:
        self._start = time.perf_counter()
        if self._end is not None:
            self._wait += self._start - self._end

    def _batch_end(self, batch: Any, views: bool) -> None:
        self._end = time.perf_counter()
        if self._start is not None:
            self._busy += self._end - self._start
        video = batch.get("video") if isinstance(batch, dict) else None
        if video is not None:
            self._items += video.shape[0] * (video.shape[1] if views else 1)

    def _figures(self) -> tuple[float, float]:
        """(share of the time spent waiting, items per second) since the last reset."""
        total = self._wait + self._busy
        return (self._wait / total, self._items / total) if total > 0 else (0.0, 0.0)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._batch_start()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._batch_end(batch, views=False)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._paused = time.perf_counter()  # a validation inside the epoch is neither waiting nor training

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._paused is not None and self._end is not None:
            self._end += time.perf_counter() - self._paused
        self._paused = None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        frac, rate = self._figures()
        pl_module.log_dict({"time/data_wait_frac": frac, "time/clips_per_s": rate}, sync_dist=True)
        if not trainer.is_global_zero:
            return
        log.info("epoch %d: %.1f clips/s, %.0f%% of the step time waiting for data", trainer.current_epoch, rate,
                 100 * frac)
        if frac > self.warn_above and not self.warned:
            self.warned = True
            workers = getattr(trainer.train_dataloader, "num_workers", None)
            log.warning(
                "training waited for data %.0f%% of the time in epoch %d (%.1f clips/s): the loader is the bottleneck. "
                "What helps: re-encode the videos (python preprocess/reencode_videos.py SRC DST, then "
                "dataset.dirs.video=DST; docs/reencoding.md), more loader workers (dataset.num_workers%s), and the "
                "videos or frames on a local disk", 100 * frac, trainer.current_epoch, rate,
                f", now {workers}" if workers is not None else "")

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()

    def on_test_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int,
                            dataloader_idx: int = 0) -> None:
        self._batch_start()

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._batch_end(batch, views=True)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        frac, rate = self._figures()
        self.test_throughput = {"views_per_s": rate, "data_wait_frac": frac}
        pl_module.log_dict({"time/views_per_s": rate, "time/test_data_wait_frac": frac}, sync_dist=True)
        if trainer.is_global_zero:
            log.info("test: %.1f views/s, %.0f%% of the step time waiting for data", rate, 100 * frac)
