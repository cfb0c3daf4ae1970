"""VideoDataModule: builds the train / val / test datasets and loaders from the ``dataset`` and ``data`` configs."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from vidrec.data import isolation
from vidrec.data.annotations import SUBSET_ALIASES, SUBSETS, Annotation, load_annotation
from vidrec.data.dataset import ClipSpec, VideoDataset, VideoSource, collate_clips, existing_entries
from vidrec.data.exclude import split_excluded
from vidrec.data.samplers import ShardedSampler
from vidrec.data.sampling import clip_span
from vidrec.data.synthetic import SyntheticSpec, ensure_synthetic
from vidrec.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ClipTransform
from vidrec.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def _get(cfg: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node or node[part] is None:
            return default
        node = node[part]
    return node


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
    """Datasets and loaders of one dataset config (design.md §3 keys)."""

    def __init__(self, dataset: Mapping[str, Any], data: Mapping[str, Any] | None = None, seed: int = 0,
                 mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None):
        super().__init__()
        self.cfg = dataset
        self.data = data or {}
        self.seed = seed
        self.mean = tuple(_get(dataset, "mean") or mean or IMAGENET_MEAN)
        self.std = tuple(_get(dataset, "std") or std or IMAGENET_STD)
        self.annotation: Annotation | None = None
        self.datasets: dict[str, VideoDataset] = {}
        self.missing: dict[str, list[str]] = {}
        self.excluded: dict[str, list[str]] = {}  # issue #14 hook: ids left out by data.exclude, per mode
        self._root = str(dataset["root"]) if dataset.get("root") else ""
        self._annotation_path = str(dataset["annotation_path"]) if dataset.get("annotation_path") else ""

    # ----------------------------------------------------------------- setup
    def prepare_data(self) -> None:
        """Generate the embedded synthetic dataset on first use (rank 0 of each node)."""
        self._resolve_synthetic()

    def _resolve_synthetic(self) -> None:
        spec = _get(self.cfg, "synthetic")
        if spec is None:
            return
        folder = ensure_synthetic(self.cfg["data_dir"], SyntheticSpec(**dict(spec)))
        self._root = str(folder / "videos")
        self._annotation_path = str(folder / "annotation.json")

    @property
    def location(self) -> VideoSource:
        return VideoSource(
            root=self._root,
            source=str(self.cfg.get("source", "frames")),
            path_format=str(_get(self.cfg, "path_format", "{label}/{video_id}")),
            video_ext=str(_get(self.cfg, "video_ext", ".mp4")),
        )

    def setup(self, stage: str | None = None) -> None:
        self._resolve_synthetic()
        if self.annotation is None:
            self._check_clip_config()
            self.annotation = load_annotation(self._annotation_path)
            expected = int(self.cfg["num_classes"])
            if self.annotation.num_classes != expected:
                raise ConfigError(
                    f"dataset.num_classes={expected} but {self._annotation_path} lists {self.annotation.num_classes} "
                    f"labels; set dataset.num_classes={self.annotation.num_classes} or use the matching annotation file"
                )
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for mode in wanted.get(stage or "fit", ("train", "val", "test")):
            if mode not in self.datasets:
                self.datasets[mode] = self._build(mode)

    def _build(self, mode: str) -> VideoDataset:
        assert self.annotation is not None
        default_subset = {"train": "training", "val": "validation", "test": "validation"}[mode]
        subset = str(_get(self.cfg, f"{mode}.subset", default_subset))
        if SUBSET_ALIASES.get(subset, subset) not in SUBSETS:
            raise ConfigError(f"dataset.{mode}.subset={subset} is not a subset of {self._annotation_path}; "
                              f"use one of {', '.join(SUBSETS)} (or {', '.join(SUBSET_ALIASES)})")
        entries = self.annotation.subset(subset)
        entries, self.excluded[mode] = split_excluded(entries, self.data.get("exclude"))  # issue #14 hook
        if self.excluded[mode]:
            log.info("%s: %d videos excluded (data.exclude=%s)", mode, len(self.excluded[mode]), self.data["exclude"])
        if mode == "test" and any(e.label is None for e in entries):
            raise ConfigError(
                f"dataset.test.subset={subset} of {self._annotation_path} has unlabelled videos; evaluate on a labelled "
                "subset (e.g. dataset.test.subset=validation) or use predict.py for unlabelled videos"
            )
        if not entries:
            raise DataError(f"{self._annotation_path}: subset {subset!r} is empty; check dataset.{mode}.subset or the split")
        present, missing = existing_entries(entries, self.location)
        if missing:
            examples = ", ".join(str(self.location.path(e)) for e in missing[:3])
            msg = f"{len(missing)} of {len(entries)} {subset} videos are missing on disk (e.g. {examples})"
            if not present:
                raise DataError(f"{msg}; check dataset.root={self._root} and dataset.source={self.location.source}")
            if self.data.get("strict", False):
                raise DataError(f"{msg}; data.strict=true makes this fatal")
            log.warning("%s; they are skipped", msg)
            self.missing[mode] = [e.video_id for e in missing]
        return VideoDataset(
            entries=present,
            location=self.location,
            mode=mode,
            clip=ClipSpec(
                frames=int(self.cfg["clip"]["frames"]),
                sample_rate=int(self.cfg["clip"]["sample_rate"]),
                num_clips=int(_get(self.cfg, "test.num_clips", 1)),
            ),
            transform=self.transform,
            flip=bool(_get(self.cfg, "train.flip", True)),
            flip_label_map=self._flip_map(),
            strict=bool(self.data.get("strict", False)),
            decoder=str(self.data.get("decoder", "auto")),
            decode_timeout_s=isolation.timeout_of(self.data),  # issue #14 hook
        )

    def _check_clip_config(self) -> None:
        """Reject clip and crop settings no video could satisfy, before any video is read."""
        clip_span(int(self.cfg["clip"]["frames"]), int(self.cfg["clip"]["sample_rate"]))  # frames, rate > 0
        t = self.transform
        checks = [
            (t.scale_range[0] <= t.scale_range[1], f"dataset.train.scale={list(t.scale_range)} must be [low, high]"),
            (t.crop_size <= t.scale_range[0], f"dataset.train.crop_size={t.crop_size} is larger than the resized frame "
                                              f"(short side dataset.train.scale[0]={t.scale_range[0]})"),
            ((t.test_crop_size or t.crop_size) <= t.test_scale,
             f"dataset.test.crop_size={t.test_crop_size or t.crop_size} is larger than the resized frame "
             f"(short side dataset.test.scale={t.test_scale})"),
            (t.num_crops in (1, 3), f"dataset.test.num_crops={t.num_crops} must be 1 (centre) or 3"),
            (int(_get(self.cfg, "test.num_clips", 1)) > 0,
             f"dataset.test.num_clips={_get(self.cfg, 'test.num_clips')} must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{message}; fix the value in the dataset config or on the command line")

    @property
    def transform(self) -> ClipTransform:
        crop = int(_get(self.cfg, "train.crop_size", 112))
        scale = _get(self.cfg, "train.scale", [crop, round(crop * 1.25)])
        return ClipTransform(
            crop_size=crop,
            scale_range=(int(scale[0]), int(scale[1])),
            test_scale=int(_get(self.cfg, "test.scale", scale[0])),
            test_crop_size=int(_get(self.cfg, "test.crop_size", crop)),
            num_crops=int(_get(self.cfg, "test.num_crops", 1)),
            mean=self.mean,
            std=self.std,
        )

    def _flip_map(self) -> dict[int, int]:
        assert self.annotation is not None
        names = dict(_get(self.cfg, "train.flip_label_map", {}) or {})
        index = {n: i for i, n in enumerate(self.annotation.labels)}
        unknown = [n for pair in names.items() for n in pair if n not in index]
        if unknown:
            raise ConfigError(f"dataset.train.flip_label_map names unknown labels {unknown[:3]}")
        return {index[a]: index[b] for a, b in names.items()}

    # --------------------------------------------------------------- loaders
    def _loader(self, mode: str, shuffle: bool, batch_size: int) -> DataLoader:
        dataset = self.datasets[mode]
        trainer = self.trainer
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = ShardedSampler(len(dataset), shuffle, self.seed, replicas, rank, drop_last=False)
        if mode == "train" and trainer is not None:
            # Lightning starts the loader's iterator (and its workers' prefetch) before it calls set_epoch; on
            # resume that would draw the first epoch's order: start at the epoch Lightning is about to run
            sampler.set_epoch(trainer.fit_loop.epoch_progress.current.processed)
        workers = loader_workers(self.cfg.get("num_workers", 0), bool(self.data.get("cap_workers", True)),
                                 processes=trainer.num_devices if trainer is not None else 1)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            collate_fn=collate_clips,
            pin_memory=pin_memory(self.data.get("pin_memory", False), trainer),
            persistent_workers=workers > 0 and bool(self.data.get("persistent_workers", True)),
            prefetch_factor=int(self.data.get("prefetch_factor", 2)) if workers > 0 else None,
            drop_last=False,
            # the loader's own generator: starting an epoch draws nothing from the global RNG, which then
            # belongs to the model alone (dropout), so a resumed run draws what the unbroken run drew
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True, int(self.cfg["batch_size"]))

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False, int(self.cfg["batch_size"]))

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False, int(_get(self.cfg, "test.batch_size", 1)))

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
        return f"{self.cfg.get('name', 'dataset')} ({Path(self._root)}; {', '.join(parts)})"
