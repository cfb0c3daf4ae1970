"""The LightningModule: loss, clip-level training/validation, video-level multi-view testing.

Views travel in the batch dimension. ``test_step`` receives ``(B, V, C, T, H, W)``, runs the B·V clips in
chunks of ``views_per_batch``, averages the softmax over each video's V views and keeps one score row per
video; ``on_test_epoch_end`` gathers the rows of every rank, drops the repeats the sampler padded with, and
computes top-1, top-5 and mean class accuracy over each video exactly once.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from vidrec.errors import DataError

log = logging.getLogger(__name__)


def accuracy_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """top-1, top-5 (or top-C for fewer classes) and mean class accuracy."""
    return MetricCollection(
        {
            "top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
            "top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
            "mean_class_acc": MulticlassAccuracy(num_classes, top_k=1, average="macro"),
        },
        prefix=prefix,
    )


def aggregate_views(logits: torch.Tensor, views: int) -> torch.Tensor:
    """Video scores from view logits ``(B·V, C)``: the mean of the softmax over each video's V views → ``(B, C)``."""
    return logits.float().softmax(dim=-1).view(-1, views, logits.shape[-1]).mean(dim=1)


def video_scores(model: nn.Module, views: torch.Tensor, views_per_batch: int) -> torch.Tensor:
    """Scores ``(B, C)`` of videos given as views ``(B, V, C, T, H, W)``.

    The B·V views go through ``model`` in chunks of ``views_per_batch`` (peak activation memory is that of
    one chunk, whatever V is), then :func:`aggregate_views` averages each video's softmax.
    """
    v = views.shape[1]
    flat = views.flatten(0, 1)
    chunk = max(1, int(views_per_batch))
    logits = torch.cat([model(flat[i : i + chunk]) for i in range(0, flat.shape[0], chunk)])
    return aggregate_views(logits, v)


class VideoClassifier(pl.LightningModule):
    """Video classifier around any registry model.

    ``optimizer`` and ``scheduler`` are partials from the config (``_partial_: true``); ``config`` is the
    resolved run config, saved in the checkpoint so that ``eval.py ckpt_path=...`` rebuilds everything.
    """

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        label_smoothing: float = 0.0,
        views_per_batch: int = 30,
        head_lr_mult: float = 1.0,
        max_skip_ratio: float = 0.1,
        config: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "optimizer", "scheduler"])
        self.model = model
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.train_metrics = accuracy_metrics(num_classes, "train/")
        self.val_metrics = accuracy_metrics(num_classes, "val/")
        self.skipped: dict[str, list[tuple[int, str, str]]] = {"train": [], "val": [], "test": []}
        self._seen: dict[str, int] = {"train": 0, "val": 0, "test": 0}
        self._test_rows: list[tuple[int, torch.Tensor, int]] = []
        self.test_results: dict[str, Any] | None = None

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.model(video)

    # ------------------------------------------------------------- skips
    def _note_skips(self, stage: str, batch: Mapping[str, Any]) -> None:
        for _, _, reason in batch.get("skipped", []):  # the reason names the file
            log.warning("%s: skipped an unreadable video: %s", stage, reason)
        self.skipped[stage].extend(batch.get("skipped", []))
        if "label" in batch:
            self._seen[stage] += len(batch["label"])

    def _check_skips(self, stage: str) -> None:
        self.skipped[stage] = self._gather_skips(self.skipped[stage])  # issue #14 hook: every rank's records
        skipped = len(self.skipped[stage])
        seen = self._sum_across_ranks(self._seen[stage])
        if skipped:
            log.warning("%s: %d unreadable video(s) skipped this epoch (listed in skipped_videos.csv)", stage, skipped)
        ratio = self.hparams.max_skip_ratio
        total = skipped + seen
        if total and skipped / total > ratio:
            raise DataError(
                f"{stage}: {skipped} of {total} videos could not be decoded ({skipped / total:.0%} > "
                f"data.max_skip_ratio={ratio}); the data looks broken — see skipped_videos.csv, e.g. "
                f"{self.skipped[stage][:1]}"
            )

    def _gather_skips(self, records: list[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
        """The skip records of all ranks, one per video (the DDP sampler's padding repeats a few), by index:
        the same list on every rank and on 1 process."""
        if dist.is_available() and dist.is_initialized():
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, list(records))
            records = [r for part in gathered for r in part]
        return sorted({r[0]: tuple(r) for r in records}.values())

    def _sum_across_ranks(self, value: int) -> int:
        if dist.is_available() and dist.is_initialized():
            t = torch.tensor([value], dtype=torch.int64, device=self.device)
            dist.all_reduce(t)
            return int(t.item())
        return value

    # ------------------------------------------------------------- training
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor | None:
        self._note_skips("train", batch)
        if "video" not in batch:
            return None
        logits = self(batch["video"])
        loss = self.criterion(logits, batch["label"])
        self.train_metrics.update(logits.detach(), batch["label"])
        # synced: the loss of the global batch (mean over ranks), the same figure on 1 and on N processes
        self.log("train/loss", loss, prog_bar=True, sync_dist=True, batch_size=len(batch["label"]))
        return loss

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_metrics.compute(), sync_dist=True)
        self.train_metrics.reset()
        self._check_skips("train")

    def on_train_epoch_start(self) -> None:
        self.skipped["train"], self._seen["train"] = [], 0
        from vidrec.models.finetune import keep_frozen_bn_eval

        keep_frozen_bn_eval(self.model)

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """Clip-level validation: one centre clip × one centre crop per video."""
        self._note_skips("val", batch)
        if "video" not in batch:
            return
        logits = self(batch["video"])
        self.log("val/loss", self.criterion(logits, batch["label"]), sync_dist=True, batch_size=len(batch["label"]))
        self.val_metrics.update(logits, batch["label"])

    def on_validation_epoch_start(self) -> None:
        self.skipped["val"], self._seen["val"] = [], 0

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute(), prog_bar=True, sync_dist=True)
        self.val_metrics.reset()
        if not self.trainer.sanity_checking:
            self._check_skips("val")

    # ------------------------------------------------------------- testing
    def video_scores(self, views: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, C)`` of videos given as views ``(B, V, C, T, H, W)``, run in chunks of ``views_per_batch``."""
        return video_scores(self.model, views, self.hparams.views_per_batch)

    def on_test_epoch_start(self) -> None:
        self._test_rows, self.skipped["test"], self._seen["test"] = [], [], 0

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """Video-level scores of a batch of videos (all their views); kept per rank until the epoch ends."""
        self._note_skips("test", batch)
        if "video" not in batch:
            return
        scores = self.video_scores(batch["video"]).cpu()
        self._test_rows.append((batch["index"].cpu(), scores, batch["label"].cpu()))

    def on_test_epoch_end(self) -> None:
        """Gather every rank's video scores, count each video once, compute the video-level metrics."""
        rows, skipped = self._test_rows, self.skipped["test"]
        if dist.is_available() and dist.is_initialized():
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, (rows, skipped))
            rows = [r for part, _ in gathered for r in part]
            skipped = [s for _, part in gathered for s in part]
        self.test_results = dedupe_videos(rows)
        decoded = set(self.test_results["index"])
        self.skipped["test"] = sorted({s[0]: s for s in skipped if s[0] not in decoded}.values())
        if not decoded:
            raise DataError("test: no video could be decoded; see skipped_videos.csv")
        probs, labels = self.test_results["probs"], self.test_results["labels"]
        metrics = video_metrics(probs, labels, self.hparams.num_classes)
        for name, value in metrics.items():
            self.log(f"test/{name}", value, rank_zero_only=True)
        self._check_skips_test(len(decoded))

    def _check_skips_test(self, seen: int) -> None:
        skipped = len(self.skipped["test"])
        if skipped:
            log.warning("test: %d unreadable video(s) skipped (listed in skipped_videos.csv)", skipped)
        if skipped / (skipped + seen) > self.hparams.max_skip_ratio:
            raise DataError(
                f"test: {skipped} of {skipped + seen} videos could not be decoded (> data.max_skip_ratio="
                f"{self.hparams.max_skip_ratio}); see skipped_videos.csv, or raise data.max_skip_ratio to accept it"
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the class names, so that predict.py and export.py name the classes without the dataset."""
        annotation = getattr(self.trainer.datamodule, "annotation", None)
        if annotation is not None:
            checkpoint["labels"] = list(annotation.labels)

    # ------------------------------------------------------------- optim
    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise RuntimeError("VideoClassifier needs an optimizer partial to train")
        head = getattr(self.model, "fc", None)
        head_ids = {id(p) for p in head.parameters()} if isinstance(head, nn.Module) else set()
        params = [p for p in self.model.parameters() if p.requires_grad]
        mult = float(self.hparams.head_lr_mult)
        if mult != 1.0 and head_ids:
            base = self.optimizer_factory.keywords.get("lr") if hasattr(self.optimizer_factory, "keywords") else None
            if base is None:
                raise RuntimeError("model.head_lr_mult needs optimizer.lr to be set")
            groups = [
                {"params": [p for p in params if id(p) not in head_ids]},
                {"params": [p for p in params if id(p) in head_ids], "lr": base * mult},
            ]
            optimizer = self.optimizer_factory(groups)
        else:
            optimizer = self.optimizer_factory(params)
        if self.scheduler_factory is None:
            return optimizer
        kwargs = {}
        if self.hparams.scheduler_interval == "step" and "steps_per_epoch" in inspect.signature(self.scheduler_factory).parameters:
            kwargs["steps_per_epoch"] = optimizer_steps_per_epoch(self.trainer)
        scheduler = self.scheduler_factory(optimizer, **kwargs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.hparams.scheduler_interval}}


def optimizer_steps_per_epoch(trainer: pl.Trainer) -> int:
    """Optimizer steps in one epoch: ⌈batches per epoch (per rank, after ``limit_train_batches``) / accumulation⌉.

    A function of the data and the trainer only — not of ``max_epochs`` or ``max_steps`` — so a schedule
    stepped per batch is the same in a run cut short and resumed as in the unbroken run. The batches are
    counted on a fresh loader: ``trainer.estimated_stepping_batches`` would start the train loader's
    iterator before a resumed run has restored its epoch, and its workers would prefetch the first epoch's order.
    """
    datamodule = getattr(trainer, "datamodule", None)
    if datamodule is None:
        return max(1, int(trainer.estimated_stepping_batches) // max(1, int(trainer.max_epochs or 1)))
    batches = len(datamodule.train_dataloader())
    limit = trainer.limit_train_batches
    batches = min(batches, int(limit)) if isinstance(limit, int) else int(batches * float(limit))
    return max(1, math.ceil(batches / max(1, trainer.accumulate_grad_batches)))


def dedupe_videos(rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> dict[str, Any]:
    """Merge ``(index, scores, label)`` batches of all ranks into one row per video, sorted by dataset index.

    The DDP sampler pads the last rank with repeats of the first videos; a repeat has the same index (and the
    same scores), so keeping one row per index counts every video exactly once.
    """
    if not rows:
        return {"index": [], "probs": torch.empty(0), "labels": torch.empty(0, dtype=torch.int64)}
    index, probs, labels = (torch.cat(parts) for parts in zip(*rows))
    first = {int(i): k for k, i in reversed(list(enumerate(index.tolist())))}
    order = sorted(first)
    keep = torch.tensor([first[i] for i in order], dtype=torch.int64)
    return {"index": order, "probs": probs[keep], "labels": labels[keep]}


def video_metrics(probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Video-level top-1, top-5 and mean class accuracy (mean over the classes present in ``labels``)."""
    k = min(5, num_classes)
    top = probs.topk(k, dim=1).indices
    hit1 = top[:, 0] == labels
    hit5 = (top == labels[:, None]).any(dim=1)
    per_class = torch.stack([hit1[labels == c].float().mean() for c in labels.unique()])
    return {"top1": float(hit1.float().mean()), "top5": float(hit5.float().mean()), "mean_class_acc": float(per_class.mean())}
