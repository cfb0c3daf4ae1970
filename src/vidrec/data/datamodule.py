"""VideoDataModule: the train / val / test datasets and loaders of a :class:`~vidrec.data.spec.DataSpec`."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from vidrec.data import isolation
from vidrec.data.annotations import Annotation, load_annotation
from vidrec.data.dataset import VideoDataset, collate_clips, existing_entries
from vidrec.data.exclude import split_excluded
from vidrec.data.sharding import ShardedSampler
from vidrec.data.spec import DataSpec
from vidrec.data.transforms import ClipTransform
from vidrec.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask: cgroups, ``taskset``, SLURM), not the host's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def loader_workers(requested: Any, cap: bool = True, processes: int = 1) -> int:
    """Loader workers of one training process: ``requested`` (``null``/``auto``: every core), capped by default
    at this process's share of the cores (``processes`` per node share them), so workers never outnumber cores."""
    share = max(1, available_cpus() // max(1, processes))
    if requested is None or str(requested).lower() == "auto":
        return share
    try:
        workers = int(requested)
    except (TypeError, ValueError):
        raise ConfigError(f"dataset.num_workers must be an integer or auto, got {requested!r}") from None
    if workers < 0:
        raise ConfigError(f"dataset.num_workers must be >= 0, got {workers}")
    return min(workers, share) if cap else workers


def pin_memory(setting: Any, trainer: pl.Trainer | None) -> bool:
    """``data.pin_memory``: true, false, or ``auto`` (pin when the batches go to a CUDA device)."""
    if str(setting).lower() != "auto":
        return bool(setting)
    if trainer is not None:
        return trainer.strategy.root_device.type == "cuda"
    return torch.cuda.is_available()


class VideoDataModule(pl.LightningDataModule):
    """Datasets and loaders of one :class:`DataSpec`; ``mean``/``std`` normalise the clips (the model's statistics
    unless the dataset config sets its own)."""

    def __init__(self, spec: DataSpec, mean: Sequence[float], std: Sequence[float], seed: int = 0):
        super().__init__()
        self.spec = spec
        self.seed = seed
        self.mean = tuple(spec.dataset.mean or mean)
        self.std = tuple(spec.dataset.std or std)
        self.annotation: Annotation | None = None
        self.datasets: dict[str, VideoDataset] = {}
        self.missing: dict[str, list[str]] = {}
        self.excluded: dict[str, list[str]] = {}  # ids left out by data.exclude, per mode

    # ----------------------------------------------------------------- setup
    def prepare_data(self) -> None:
        """Generate the embedded synthetic dataset on first use (rank 0 of each node)."""
        self.spec = self.spec.with_synthetic_data()

    def setup(self, stage: str | None = None) -> None:
        self.spec = self.spec.with_synthetic_data()
        if self.annotation is None:
            self.annotation = load_annotation(self.spec.annotation_path)
            problems = self.spec.annotation_problems(self.annotation)
            if problems:
                raise ConfigError(problems[0])
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for mode in wanted.get(stage or "fit", ("train", "val", "test")):
            if mode not in self.datasets:
                self.datasets[mode] = self._build(mode)

    def _build(self, mode: str) -> VideoDataset:
        assert self.annotation is not None
        spec, subset, path = self.spec, self.spec.subset(mode), self.spec.annotation_path
        entries = self.annotation.subset(subset)
        entries, self.excluded[mode] = split_excluded(entries, spec.data.exclude)
        if self.excluded[mode]:
            log.info("%s: %d videos excluded (data.exclude=%s)", mode, len(self.excluded[mode]), spec.data.exclude)
        if mode == "test" and any(e.label is None for e in entries):
            raise ConfigError(
                f"dataset.test.subset={subset} of {path} has unlabelled videos; evaluate on a labelled "
                "subset (e.g. dataset.test.subset=validation) or use predict.py for unlabelled videos"
            )
        if not entries:
            raise DataError(f"{path}: subset {subset!r} is empty; check dataset.{mode}.subset or the split")
        location = spec.location
        present, missing = existing_entries(entries, location)
        if missing:
            examples = ", ".join(str(location.path(e)) for e in missing[:3])
            msg = f"{len(missing)} of {len(entries)} {subset} videos are missing on disk (e.g. {examples})"
            if not present:
                raise DataError(f"{msg}; check dataset.root={location.root} and dataset.source={location.source}")
            if spec.data.strict:
                raise DataError(f"{msg}; data.strict=true makes this fatal")
            log.warning("%s; they are skipped", msg)
            self.missing[mode] = [e.video_id for e in missing]
        d = spec.dataset
        return VideoDataset(
            entries=present,
            location=location,
            mode=mode,
            clip=d.clip,
            num_clips=d.test.num_clips,
            selection=d.test.clip_selection,
            clip_stride=d.test.clip_stride,
            transform=self.transform,
            flip=d.train.flip,
            flip_label_map=spec.flip_map(self.annotation),
            strict=spec.data.strict,
            decoder=spec.data.decoder,
            decode_timeout_s=isolation.timeout_of(spec.data),
        )

    @property
    def transform(self) -> ClipTransform:
        return ClipTransform.from_spec(self.spec, self.mean, self.std)

    # --------------------------------------------------------------- loaders
    def _loader(self, mode: str, shuffle: bool, batch_size: int) -> DataLoader:
        dataset = self.datasets[mode]
        trainer = self.trainer
        loader = self.spec.dataset.loader
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        repeats = self.spec.dataset.train.repeats if mode == "train" else 1  # repeated augmentation
        sampler = ShardedSampler(len(dataset), shuffle, self.seed, replicas, rank, drop_last=False, repeats=repeats)
        if mode == "train" and trainer is not None:
            # Lightning starts the loader's iterator (and its workers' prefetch) before it calls set_epoch; on
            # resume that would draw the first epoch's order: start at the epoch Lightning is about to run
            sampler.set_epoch(trainer.fit_loop.epoch_progress.current.processed)
        workers = loader_workers(self.spec.dataset.num_workers, loader.cap_workers,
                                 processes=trainer.num_devices if trainer is not None else 1)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            collate_fn=collate_clips,
            pin_memory=pin_memory(loader.pin_memory, trainer),
            persistent_workers=workers > 0 and loader.persistent_workers,
            prefetch_factor=loader.prefetch_factor if workers > 0 else None,
            drop_last=False,
            # the loader's own generator: starting an epoch draws nothing from the global RNG, which then
            # belongs to the model alone (dropout), so a resumed run draws what the unbroken run drew
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True, self.spec.dataset.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False, self.spec.dataset.batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False, self.spec.dataset.test.batch_size)

    @property
    def labels(self) -> list[str]:
        if self.annotation is None:
            self.setup("test")
        assert self.annotation is not None
        return list(self.annotation.labels)

    def test_ids(self) -> list[str]:
        return [e.video_id for e in self.datasets["test"].entries]

    def describe(self) -> str:
        """A one-line summary for the start-up log."""
        parts = [f"{m}: {len(d)} videos" for m, d in self.datasets.items()]
        return f"{self.spec.dataset.name} ({Path(self.spec.location.root)}; {', '.join(parts)})"

