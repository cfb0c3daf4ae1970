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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from vidrec.checkpoint import check_model_fits, model_state
from vidrec.data.transforms import normalize_cthw
from vidrec.errors import ConfigError, DataError, DivergedError
from vidrec.mixup import Mixup, mixup_accuracy_inputs, soft_target_cross_entropy, step_rng
from vidrec.models import load_pretrained
from vidrec.models.finetune import backbone_parameters, get_head, head_parameters
from vidrec.models.finetune import freeze as freeze_layers
from vidrec.models.speed import apply_speed_options
from vidrec.optim import NO_WEIGHT_DECAY, param_groups
from vidrec.scoring import MeanClassAccuracy, dedupe_videos, top_k, video_metrics, video_scores

log = logging.getLogger(__name__)


def accuracy_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """top-1, top-5 (or top-C for fewer classes) and mean class accuracy over the classes with samples (the
    video-level definition, :func:`vidrec.scoring.video_metrics`). Compute groups are off: torchmetrics would
    otherwise merge metrics whose states happen to be equal after the first batch (top-5 with top-1 when that
    batch has no top-5 hit) and report one for the other."""
    return MetricCollection(
        {
            "top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
            "top5": MulticlassAccuracy(num_classes, top_k=top_k(num_classes), average="micro"),
            "mean_class_acc": MeanClassAccuracy(num_classes),
        },
        prefix=prefix,
        compute_groups=False,
    )


class VideoClassifier(pl.LightningModule):
    """Video classifier around any registry network ``net`` (what every ``configs/model/*.yaml`` instantiates).

    ``pretrained`` weights are loaded into ``net`` — their classifier kept when its class count fits, replaced
    (with a warning) when it does not — then ``freeze`` and the speed options apply. ``fully_conv_test`` runs
    the test with the network's fully convolutional head (I3D-ResNet, video-nonlocal-net's protocol). ``optimizer`` and ``scheduler`` are partials from the config (``_partial_: true``); ``config``
    is the resolved run config, saved in the checkpoint so that ``eval.py ckpt_path=...`` rebuilds everything.
    """

    def __init__(
        self,
        net: nn.Module,
        pretrained: str | None = None,
        freeze: str = "none",
        head_lr_mult: float = 1.0,
        label_smoothing: float = 0.0,
        channels_last: bool = False,
        compile: Any = False,
        depth: Any = None,
        variant: Any = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        views_per_batch: int = 30,
        max_skip_ratio: float = 0.1,
        fully_conv_test: bool = False,
        mixup: Mapping[str, Any] | None = None,
        layer_decay: float = 1.0,
        no_weight_decay: bool = False,
        config: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        if pretrained:
            load_pretrained(net, pretrained, skip_head=None)
        if fully_conv_test and not hasattr(net, "fully_conv"):
            raise ConfigError(f"dataset.test.fully_conv=true: {type(net).__name__} has no fully convolutional test "
                              "head (I3D-ResNets have one); set dataset.test.fully_conv=false")
        self.model = apply_speed_options(freeze_layers(net, str(freeze or "none")), channels_last, compile)
        self.num_classes = get_head(net).out_features
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        options = dict(mixup or {})
        self.mixup = Mixup(self.num_classes, **options) if options.pop("enabled", False) else None
        self.train_metrics = accuracy_metrics(self.num_classes, "train/")
        self.val_metrics = accuracy_metrics(self.num_classes, "val/")
        self.skipped: dict[str, list[tuple[int, str, str]]] = {"train": [], "val": [], "test": []}
        self._seen: dict[str, int] = {"train": 0, "val": 0, "test": 0}
        self._test_rows: list[tuple[int, torch.Tensor, int]] = []
        self.test_results: dict[str, Any] | None = None

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.model(video)

    def set_input_stats(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """The per-channel statistics (pixels in [0, 1]) that normalise the uint8 clips on the device."""
        self.register_buffer("input_mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("input_std", torch.tensor(std, dtype=torch.float32), persistent=False)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Loader workers hand over uint8 clips (a quarter of float32's bytes over PCIe); the conversion to
        float and the normalisation run here, on the device."""
        video = batch.get("video") if isinstance(batch, dict) else None
        if video is not None and video.dtype == torch.uint8:
            if getattr(self, "input_mean", None) is None:
                raise RuntimeError("VideoClassifier got uint8 clips but no input statistics: call set_input_stats")
            batch["video"] = normalize_cthw(video, self.input_mean, self.input_std)
        return batch

    # ------------------------------------------------------------- skips
    def _note_skips(self, stage: str, batch: Mapping[str, Any]) -> None:
        for _, _, reason in batch.get("skipped", []):  # the reason names the file
            log.warning("%s: skipped an unreadable video: %s", stage, reason)
        self.skipped[stage].extend(batch.get("skipped", []))
        if "label" in batch:
            self._seen[stage] += len(batch["label"])

    def _check_skips(self, stage: str) -> None:
        """Stop when more than ``max_skip_ratio`` of this epoch's videos (all ranks) could not be decoded."""
        self.skipped[stage] = self._gather_skips(self.skipped[stage])  # every rank's records, the same on each
        self._enforce_skip_ratio(stage, len(self.skipped[stage]), self._sum_across_ranks(self._seen[stage]))

    def _enforce_skip_ratio(self, stage: str, skipped: int, decoded: int) -> None:
        if not skipped:
            return
        log.warning("%s: %d unreadable video(s) skipped this epoch (listed in skipped_videos.csv)", stage, skipped)
        ratio, total = self.hparams.max_skip_ratio, skipped + decoded
        if skipped / total > ratio:
            raise DataError(
                f"{stage}: {skipped} of {total} videos could not be decoded ({skipped / total:.0%} > "
                f"data.max_skip_ratio={ratio}); the data looks broken — see skipped_videos.csv, e.g. "
                f"{self.skipped[stage][:1]}, or raise data.max_skip_ratio to accept it"
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
        if self.mixup is not None:  # soft targets; accuracy against the dominant label (vidrec.mixup)
            seed = int((self.hparams.config or {}).get("seed", 0))
            mixed = self.mixup(batch["video"], batch["label"], step_rng(seed, self.current_epoch, batch_idx,
                                                                         self.global_rank))
            logits = self(mixed.video)
            loss = soft_target_cross_entropy(logits, mixed.targets)
            self.train_metrics.update(*mixup_accuracy_inputs(logits, mixed.targets, self.mixup.label_smoothing))
        else:
            logits = self(batch["video"])
            loss = self.criterion(logits, batch["label"])
            self.train_metrics.update(logits.detach(), batch["label"])
        # synced: the loss of the global batch (mean over ranks), the same figure on 1 and on N processes
        self.log("train/loss", loss, prog_bar=True, sync_dist=True, batch_size=len(batch["label"]))
        if batch_idx % self.trainer.log_every_n_steps == 0:  # a host sync, so only as often as the loss is logged
            self._check_finite(loss)
        return loss

    def _check_finite(self, loss: torch.Tensor) -> None:
        """Stop a run whose loss went NaN or infinite (nothing after it can recover), as PySlowFast does
        (``slowfast/utils/misc.py`` ``check_nan_losses``, called by ``tools/train_net.py``), instead of training on
        to the end at chance."""
        if bool(torch.isfinite(loss.detach())):
            return
        precision = str(self.trainer.precision)
        hint = ("; bf16 on this CPU may be the cause (docs/platforms.md): retry with trainer.precision=32-true"
                if "bf16" in precision and self.device.type == "cpu" else "")
        raise DivergedError(
            f"train/loss is {float(loss.detach()):.4g} at epoch {self.current_epoch}, step {self.global_step} "
            f"(precision {precision}, lr {self.trainer.optimizers[0].param_groups[0]['lr']:.3g}): the run diverged; "
            f"lower optimizer.lr or set trainer.gradient_clip_val, then start again or resume from an earlier "
            f"checkpoint{hint}")

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_metrics.compute(), sync_dist=True)
        self.train_metrics.reset()
        self._check_skips("train")

    def on_train_start(self) -> None:
        """An epoch shorter than ``trainer.log_every_n_steps`` would never log ``train/loss``: log every step then."""
        batches = self.trainer.num_training_batches
        if isinstance(batches, int) and 0 < batches < self.trainer.log_every_n_steps:
            log.info("logging every step (an epoch has %d; trainer.log_every_n_steps=%d)", batches,
                     self.trainer.log_every_n_steps)
            self.trainer.log_every_n_steps = 1

    def on_train_epoch_start(self) -> None:
        self.skipped["train"], self._seen["train"] = [], 0

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
        if self.hparams.fully_conv_test:
            self.model.fully_conv = True

    def on_test_end(self) -> None:
        if self.hparams.fully_conv_test:
            self.model.fully_conv = False

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
        self.test_results["metrics"] = video_metrics(probs, labels, self.num_classes)
        for name, value in self.test_results["metrics"].items():
            self.log(f"test/{name}", value, rank_zero_only=True)
        self._enforce_skip_ratio("test", len(self.skipped["test"]), len(decoded))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """On resume (or a test restoring a checkpoint), check the dict Lightning read before it loads the weights:
        a file that is not a train.py checkpoint, or weights of another network, give one clear error."""
        path = getattr(self._trainer, "ckpt_path", None) or "ckpt_path" if self._trainer is not None else "ckpt_path"
        check_model_fits(self.model, model_state(checkpoint, path), path)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the class names, so that predict.py and export.py name the classes without the dataset."""
        annotation = getattr(self.trainer.datamodule, "annotation", None)
        if annotation is not None:
            checkpoint["labels"] = list(annotation.labels)

    # ------------------------------------------------------------- optim
    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise RuntimeError("VideoClassifier needs an optimizer partial to train")
        mult = float(self.hparams.head_lr_mult)
        if float(self.hparams.layer_decay) != 1.0 or self.hparams.no_weight_decay:
            keywords = getattr(self.optimizer_factory, "keywords", {})
            if keywords.get("lr") is None:
                raise ConfigError("model.layer_decay / model.no_weight_decay need optimizer.lr to be set")
            groups = param_groups(self.model, float(keywords["lr"]), float(keywords.get("weight_decay", 0.0)),
                                  float(self.hparams.layer_decay), NO_WEIGHT_DECAY if self.hparams.no_weight_decay else (),
                                  mult, decay_1d=not self.hparams.no_weight_decay)
            optimizer = self.optimizer_factory(groups)
        elif mult != 1.0:
            base = self.optimizer_factory.keywords.get("lr") if hasattr(self.optimizer_factory, "keywords") else None
            if base is None:
                raise RuntimeError("model.head_lr_mult needs optimizer.lr to be set")
            optimizer = self.optimizer_factory([
                {"params": backbone_parameters(self.model, trainable_only=True)},
                {"params": head_parameters(self.model, trainable_only=True), "lr": base * mult},
            ])
        else:
            optimizer = self.optimizer_factory([p for p in self.model.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        interval = scheduler_interval(self.scheduler_factory)
        kwargs = {}
        if interval == "step" and "steps_per_epoch" in inspect.signature(self.scheduler_factory).parameters:
            kwargs["steps_per_epoch"] = optimizer_steps_per_epoch(self.trainer)
        scheduler = self.scheduler_factory(optimizer, **kwargs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}


def scheduler_interval(factory: Callable[..., Any]) -> str:
    """``step`` for schedules defined per optimizer step (they say so with an ``interval`` attribute, as
    :func:`vidrec.optim.warmup_cosine`), else ``epoch`` (torch's schedulers, MultiStepLR...)."""
    return getattr(getattr(factory, "func", factory), "interval", "epoch")


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


