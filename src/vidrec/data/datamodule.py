"""VideoDataModule: builds the train / val / test datasets and loaders from the ``dataset`` and ``data`` configs."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from vidrec.data.annotations import Annotation, load_annotation
from vidrec.data.dataset import ClipSpec, VideoDataset, VideoSource, collate_clips, existing_entries
from vidrec.data.samplers import ShardedSampler
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
        entries = self.annotation.subset(subset)
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
        )

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
        workers = int(self.cfg.get("num_workers", 0))
        workers = min(workers, os.cpu_count() or 1) if self.data.get("cap_workers", True) else workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            collate_fn=collate_clips,
            pin_memory=bool(self.data.get("pin_memory", False)),
            persistent_workers=workers > 0 and bool(self.data.get("persistent_workers", True)),
            prefetch_factor=int(self.data.get("prefetch_factor", 2)) if workers > 0 else None,
            drop_last=False,
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
