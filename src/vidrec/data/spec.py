"""The typed dataset spec.

``DatasetConfig`` (with ``DataConfig`` for ``data.*``) is the schema of the ``dataset`` config group,
registered with Hydra's ConfigStore (:mod:`vidrec.config`): every ``configs/dataset/*.yaml`` starts from it, so a misspelt key fails
at composition with its name, and every default is written here once. :class:`DataSpec` is that config
resolved once — where the videos are and the rule for an entry's path, the presence test, the subset each
stage reads, clips, transforms, the test protocol and the loader settings. The data module, the data check,
prediction, export and the results files all take it; none re-derives a rule.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidrec.data.annotations import SUBSET_ALIASES, SUBSETS, Annotation, VideoEntry
from vidrec.data.layout import DEFAULT_PATH_FORMAT, FRAME_TEMPLATE, entry_relpath
from vidrec.data.sampling import CLIP_SELECTIONS, FPS_RULES
from vidrec.errors import ConfigError

#: How the test pipeline resizes and crops frames, in words (vidrec.data.transforms implements it); every recorded
#: protocol (results.json, predictions, export sidecars) carries them, so that another program can reproduce a view.
RESIZE_FILTERS = {
    "scale": "bilinear, antialiased when shrinking, align_corners=False, on uint8 RGB frames (torch.nn.functional."
             "interpolate on channels-last uint8, rounding to the nearest level); long side = round(long * scale / short)",
    "resize": "bilinear, no antialias, align_corners=False, on float frames, then rounded to uint8",
}
CROP_POSITIONS = {
    1: "centre: top = round((H - crop) / 2), left = round((W - crop) / 2), halves rounded to even",
    3: "start, centre, end of the long side L: offsets 0, (L - crop) // 2, L - crop; the short side S at (S - crop) // 2",
    10: "corners and centre at (left, top) = (0, 0), (4a, 0), (0, 4b), (4a, 4b), (2a, 2b) with a = (W - crop) // 4, "
        "b = (H - crop) // 4, each followed by its horizontal flip (mmaction2 TenCrop)",
}
SOURCES = ("frames", "video")
STAGES = ("train", "val", "test")
DECODERS = ("auto", "pyav", "cuvid", "decord")


def describe_views(protocol: dict[str, Any], views: int | None = None, num_frames: int | None = None) -> str:
    """A recorded protocol (:meth:`DataSpec.protocol`) in words: ``10 clips × 3 crops = 30 views of 16×4 frames``,
    or ``whole video (250 frames) × 1 crop``; ``views`` and ``num_frames`` are a scored video's, when known."""
    crops = f"{protocol['num_crops']} crop{'s' * (protocol['num_crops'] != 1)}"
    selection = protocol["clip_selection"]
    if selection == "whole":
        length = f" ({num_frames} frames" + (f", 1 in {protocol['sample_rate']}" if protocol["sample_rate"] > 1 else "")
        return f"whole video{length + ')' if num_frames else ''} × {crops}"
    clips = (f"every {protocol['clip_stride'] or 'clip span'} frames" if selection == "stride"
             else f"{protocol['num_clips']} {'segment samplings' if selection == 'segments' else 'clips'}")
    total = f" = {views} views" if views else ""
    return f"{clips} × {crops}{total} of {protocol['clip_frames']}×{protocol['sample_rate']} frames"


# ------------------------------------------------------------------ the schema (configs/dataset/*.yaml)
#: Test clip selections that give every video the same number of views.
FIXED_VIEW_SELECTIONS = ("uniform", "offset", "segments", "dense")
#: How training and validation clips are drawn (vidrec.data.sampling): ``clip`` — ``frames`` frames ``sample_rate``
#: apart from a random (train) or the centre (val) start; ``segments`` — TSN's one frame in each of ``frames`` equal
#: segments; ``dense`` — TSM's ``frames`` frames spread over a window of ``frames × sample_rate``.
CLIP_SAMPLINGS = ("clip", "segments", "dense")


@dataclass
class ClipConfig:
    """Temporal sampling: clip length and the stride between its frames."""

    frames: int = 16
    sample_rate: int = 4
    sampling: str = "clip"  # clip | segments | dense (CLIP_SAMPLINGS)
    # sample by time: the frame rate the authors resampled to (null: every source frame, clips counted in frames),
    # and their rule (vidrec.data.sampling.FPS_RULES: torchvision | deepmind | pyslowfast)
    fps: float | None = None
    fps_rule: str = "torchvision"


@dataclass
class AugmentConfig:
    """Clip-consistent training augmentation (vidrec.data.augment.ClipAugment); ``crop: null`` keeps the short-side
    jitter + random crop of ``train.scale``."""

    crop: str | None = None  # null | random_resized (relative area scale, aspect ratio) | multi_scale (TSN)
    scale: list[float] = field(default_factory=lambda: [0.08, 1.0])  # random_resized: area relative to the frame
    ratio: list[float] = field(default_factory=lambda: [0.75, 1.3333])  # random_resized: aspect range (log-uniform)
    multi_scales: list[float] = field(default_factory=lambda: [1.0, 0.875, 0.75, 0.66])  # multi_scale: TSN's
    max_distort: int = 1
    short_side: int | None = None  # resize the short side first (TSN's 256 before its multi-scale crop)
    rand_augment: str | None = None  # timm's grammar, e.g. rand-m7-n4-mstd0.5-inc1
    interpolation: str = "bicubic"
    color_jitter: list[float] | None = None  # [brightness, contrast, saturation, hue]
    erase_prob: float = 0.0  # random erasing (one rectangle on every frame of a clip)
    erase_mode: str = "pixel"
    erase_count: int = 1


@dataclass
class TrainConfig:
    subset: str = "training"
    crop_size: int = 112
    scale: list[int] | None = None  # short side jittered in [low, high]; default [crop, 1.25 × crop]
    flip: bool = True
    flip_label_map: dict[str, str] = field(default_factory=dict)  # a horizontal flip swaps these classes
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    repeats: int = 1  # repeated augmentation: each video k times per epoch, differently augmented


@dataclass
class ValConfig:
    subset: str = "validation"


@dataclass
class TestConfig:
    """The multi-view test protocol: K clips × crops per video, the mean of their softmax."""

    subset: str = "validation"
    scale: int | None = None  # short side before cropping; default train.scale[0]
    resize: list[int] | None = None  # [H, W]: every frame resized to exactly this (VMZ, torchvision: [128, 171])
    crop_size: int | None = None  # default train.crop_size
    clip_selection: str = "uniform"  # uniform | offset | stride | whole (vidrec.data.sampling)
    num_clips: int = 1  # clips per video for uniform and offset
    clip_stride: int | None = None  # stride: a clip every this many frames (default: the clip's span)
    num_crops: int = 1  # 1 (centre), 3 (start, centre, end of the long side) or 10 (corners, centre, their flips)
    fully_conv: bool = False  # the network's fully convolutional test head, where it has one (I3D-ResNet)
    batch_size: int = 1  # videos per loader batch
    views_per_batch: int = 30  # views run through the network at once (memory)


@dataclass
class LoaderConfig:
    """DataLoader mechanics (the batch size and worker count are ``dataset.batch_size`` / ``num_workers``)."""

    pin_memory: Any = "auto"  # true | false | auto (when batches go to a CUDA device)
    persistent_workers: bool = True
    prefetch_factor: int = 2
    cap_workers: bool = True  # never more loader workers than the process's share of CPU cores


@dataclass
class SyntheticSpec:
    """What the embedded synthetic dataset generates; every field is part of its folder name's signature."""

    per_class_train: int = 48
    per_class_val: int = 10
    per_class_test: int = 16
    frames: int = 32
    height: int = 64
    width: int = 80
    fps: int = 16
    seed: int = 0

    def signature(self) -> str:
        return hashlib.sha1(repr(sorted(dataclasses.asdict(self).items())).encode()).hexdigest()[:10]


@dataclass
class DatasetConfig:
    """Schema of ``dataset``: the keys every dataset config has (design.md §3) and the optional ones."""

    name: str = "dataset"
    num_classes: int = 0
    root: str | None = None  # folder of frame folders or videos
    annotation_path: str | None = None
    source: str = "frames"  # frames | video
    path_format: str = DEFAULT_PATH_FORMAT  # placeholders {label}, {video_id}, {subset}
    video_ext: str = ".mp4"
    dirs: dict[str, str] = field(default_factory=dict)  # where each source lives; root picks one
    split: int | None = None  # UCF101 / HMDB51: official split 1, 2 or 3
    data_dir: str | None = None  # synthetic: where it is generated
    synthetic: SyntheticSpec | None = None
    mean: list[float] | None = None  # per-channel input statistics on [0, 1] pixels; default: the model's
    std: list[float] | None = None
    clip: ClipConfig = field(default_factory=ClipConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    val: ValConfig = field(default_factory=ValConfig)
    test: TestConfig = field(default_factory=TestConfig)
    batch_size: int = 32
    num_workers: Any = 4  # an integer, or auto (every core of this process's share)
    loader: LoaderConfig = field(default_factory=LoaderConfig)


@dataclass
class DataConfig:
    """Schema of ``data``: how videos are decoded and what an unreadable one costs."""

    decoder: str = "auto"  # auto = pyav (PyAV, keyframe seeking) | cuvid (the same on NVDEC, else the CPU) | decord
    strict: bool = False  # true: the first unreadable video stops the run
    max_skip_ratio: float = 0.1  # stop when more than this share of an epoch's videos cannot be decoded
    # a decode that crashes its process or runs longer than decode_timeout_s costs that video only (docs/bad-data.md)
    isolate_decoding: bool = True  # false: decode in the loader's own process (no crash or hang protection)
    decode_timeout_s: float | None = 60.0  # null: crashes are caught, no time limit
    coverage: str | None = None  # coverage.json of `python -m vidrec.data.check ... --official-csv`: in results.json
    exclude: str | None = None  # bad_videos.csv of `python -m vidrec.data.check ... --decode`: left out, counted


# ------------------------------------------------------------------ where entries live
@dataclass(frozen=True)
class Location:
    """Where a dataset's entries live: ``root / path_format`` (+ ``video_ext`` for videos)."""

    root: str
    source: str = "frames"
    path_format: str = DEFAULT_PATH_FORMAT
    video_ext: str = ".mp4"

    def path(self, entry: VideoEntry) -> Path:
        rel = entry_relpath(self.path_format, entry.video_id, entry.label, entry.subset)
        return Path(self.root) / (rel + (self.video_ext if self.source == "video" else ""))

    def is_present(self, entry: VideoEntry) -> bool:
        """A frame folder counts when it holds its first frame, a video when its file exists."""
        path = self.path(entry)
        return (path / FRAME_TEMPLATE.format(1)).is_file() if self.source == "frames" else path.is_file()


# ------------------------------------------------------------------ the resolved spec
def unknown_keys(node: Any, schema: type, prefix: str) -> list[str]:
    """Keys of ``node`` (nested mappings) that ``schema`` (nested dataclasses) does not have, each with the
    closest valid keys: ``dataset.rot (did you mean root?)``."""
    import difflib
    import typing

    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    found = []
    for key, value in (node or {}).items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=3, cutoff=0.5)
            found.append(f"{prefix}.{key}" + (f" (did you mean {' or '.join(close)}?)" if close else ""))
            continue
        inner = hints[key]
        inner = next((a for a in typing.get_args(inner) if dataclasses.is_dataclass(a)), inner)
        if dataclasses.is_dataclass(inner) and hasattr(value, "items"):
            found += unknown_keys(value, inner, f"{prefix}.{key}")
    return found


def _typed(node: Any, schema: type, prefix: str) -> Any:
    """``node`` (a mapping or a DictConfig) merged onto ``schema``: defaults filled, unknown keys and wrong types
    refused with the key's name."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    unknown = unknown_keys(node, schema, prefix)
    if unknown:
        raise ConfigError(f"unknown key {', '.join(unknown)}; the valid keys and their defaults are those of "
                          f"{schema.__name__} in vidrec/data/spec.py")
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), node or {}))
    except OmegaConfBaseException as exc:
        key = f"{prefix}.{exc.full_key}" if getattr(exc, "full_key", None) else prefix
        raise ConfigError(f"{key}: {str(exc).splitlines()[0]}") from None


@dataclass(frozen=True)
class DataSpec:
    """A dataset config and the ``data`` policy, resolved once: paths, subsets, clips, transforms, loaders."""

    dataset: DatasetConfig
    data: DataConfig

    @classmethod
    def from_config(cls, dataset: Any, data: Any = None) -> DataSpec:
        """Resolve ``dataset`` / ``data`` (mappings or DictConfigs); raises :class:`ConfigError` on a bad key or value."""
        spec = cls(_typed(dataset, DatasetConfig, "dataset"), _typed(data, DataConfig, "data"))
        spec.validate()
        return spec

    def replace(self, **dataset_fields: Any) -> DataSpec:
        return DataSpec(dataclasses.replace(self.dataset, **dataset_fields), self.data)

    # ----------------------------------------------------------- checks of values alone
    def validate(self) -> None:
        """Reject settings no video could satisfy, before any video is read."""
        d = self.dataset
        lo, hi = self.train_scale
        checks = [
            (d.source in SOURCES, f"dataset.source={d.source}: use 'frames' (extracted frame folders) or 'video'"),
            (d.clip.frames > 0, f"dataset.clip.frames must be positive, got {d.clip.frames}"),
            (d.clip.sample_rate > 0, f"dataset.clip.sample_rate must be positive, got {d.clip.sample_rate}"),
            (lo <= hi, f"dataset.train.scale={[lo, hi]} must be [low, high]"),
            (d.train.crop_size <= lo, f"dataset.train.crop_size={d.train.crop_size} is larger than the resized frame "
                                      f"(short side dataset.train.scale[0]={lo})"),
            (bool(d.test.resize) or self.test_crop_size <= self.test_scale,
             f"dataset.test.crop_size={self.test_crop_size} is larger than the resized frame "
             f"(short side dataset.test.scale={self.test_scale})"),
            (d.test.num_crops in (1, 3, 10),
             f"dataset.test.num_crops={d.test.num_crops} must be 1 (centre), 3 or 10 (corners, centre and flips)"),
            (d.test.num_clips > 0, f"dataset.test.num_clips={d.test.num_clips} must be positive"),
            (d.test.clip_selection in CLIP_SELECTIONS,
             f"dataset.test.clip_selection={d.test.clip_selection}: use one of {', '.join(CLIP_SELECTIONS)}"),
            (d.train.repeats >= 1, f"dataset.train.repeats={d.train.repeats} must be 1 or more"),
            (d.clip.fps is None or d.clip.fps > 0, f"dataset.clip.fps={d.clip.fps} must be positive (or null)"),
            (d.clip.fps_rule in FPS_RULES, f"dataset.clip.fps_rule={d.clip.fps_rule}: use one of {', '.join(FPS_RULES)}"),
            (d.clip.fps is None or d.clip.sampling == "clip",
             f"dataset.clip.fps={d.clip.fps} samples clips by time: use dataset.clip.sampling=clip"),
            (d.clip.sampling in CLIP_SAMPLINGS,
             f"dataset.clip.sampling={d.clip.sampling}: use one of {', '.join(CLIP_SAMPLINGS)}"),
            (d.test.clip_selection in FIXED_VIEW_SELECTIONS or d.test.batch_size == 1,
             f"dataset.test.clip_selection={d.test.clip_selection} gives each video its own number of views: "
             f"set dataset.test.batch_size=1 (got {d.test.batch_size})"),
            (not d.test.resize or (len(d.test.resize) == 2 and self.test_crop_size <= min(d.test.resize)),
             f"dataset.test.resize={d.test.resize} must be [H, W], each at least the crop {self.test_crop_size}"),
            (self.data.decoder in DECODERS, f"data.decoder={self.data.decoder}: use one of {', '.join(DECODERS)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{message}; fix the value in the dataset config or on the command line")
        for stage in STAGES:
            self.subset(stage)

    # ----------------------------------------------------------- derived values
    @property
    def train_scale(self) -> tuple[int, int]:
        t = self.dataset.train
        lo, hi = t.scale if t.scale else (t.crop_size, round(t.crop_size * 1.25))
        return int(lo), int(hi)

    @property
    def test_scale(self) -> int:
        return int(self.dataset.test.scale or self.train_scale[0])

    @property
    def test_crop_size(self) -> int:
        return int(self.dataset.test.crop_size or self.dataset.train.crop_size)

    @property
    def views_per_video(self) -> int | None:
        """Views of every video (clips × crops), or None where the clip count depends on the video's length."""
        t = self.dataset.test
        return t.num_clips * t.num_crops if t.clip_selection in FIXED_VIEW_SELECTIONS else None

    def protocol(self) -> dict[str, Any]:
        """The test protocol as plain data, as results.json, predictions and export sidecars record it."""
        d = self.dataset
        return {
            "clip_frames": d.clip.frames,
            "sample_rate": d.clip.sample_rate,
            "fps": d.clip.fps,  # null: frame-based (every source frame)
            "fps_rule": d.clip.fps_rule if d.clip.fps else None,
            "clip_selection": d.test.clip_selection,
            "num_clips": d.test.num_clips if d.test.clip_selection in FIXED_VIEW_SELECTIONS else None,
            "clip_stride": d.test.clip_stride if d.test.clip_selection == "stride" else None,
            "num_crops": d.test.num_crops,
            "scale": None if d.test.resize else self.test_scale,
            "resize": list(d.test.resize) if d.test.resize else None,
            "crop_size": self.test_crop_size,
            "resize_filter": RESIZE_FILTERS["resize" if d.test.resize else "scale"],
            "crop_positions": CROP_POSITIONS.get(d.test.num_crops),
            "fully_conv": d.test.fully_conv,
            "aggregation": "mean of softmax over all views",
        }

    def subset(self, stage: str) -> str:
        """The annotation subset a stage (train / val / test) reads, alias resolved."""
        name = getattr(self.dataset, stage).subset
        full = SUBSET_ALIASES.get(name, name)
        if full not in SUBSETS:
            of = f" of {self.dataset.annotation_path}" if self.dataset.annotation_path else ""
            raise ConfigError(f"dataset.{stage}.subset={name} is not a subset{of}; use one of {', '.join(SUBSETS)} "
                              f"(or {', '.join(SUBSET_ALIASES)})")
        return full

    def with_synthetic_data(self) -> DataSpec:
        """For the synthetic dataset: generate it on first use and point root / annotation_path at it."""
        d = self.dataset
        if d.synthetic is None:
            return self
        from vidrec.data.synthetic import ensure_synthetic

        if not d.data_dir:
            raise ConfigError("dataset.data_dir is not set; the synthetic dataset is generated there")
        folder = ensure_synthetic(d.data_dir, d.synthetic)
        return self.replace(root=str(folder / "videos"), annotation_path=str(folder / "annotation.json"))

    @property
    def location(self) -> Location:
        d = self.dataset
        if not d.root:
            raise ConfigError(f"dataset.root is not set for dataset {d.name}; set it (or paths.data_dir, or "
                              f"dataset.dirs.{d.source})")
        return Location(str(d.root), d.source, d.path_format, d.video_ext)

    @property
    def annotation_path(self) -> str:
        if not self.dataset.annotation_path:
            raise ConfigError(f"dataset.annotation_path is not set for dataset {self.dataset.name}; set it or pick a "
                              "dataset config (dataset=ucf101 ...)")
        return str(self.dataset.annotation_path)

    # ----------------------------------------------------------- checks against the annotation
    def annotation_problems(self, annotation: Annotation) -> list[str]:
        """What in the config contradicts the annotation file (each a message saying what to change)."""
        d, problems = self.dataset, []
        if d.num_classes != annotation.num_classes:
            problems.append(f"dataset.num_classes={d.num_classes} but {annotation.path} lists {annotation.num_classes} "
                            f"labels; set dataset.num_classes={annotation.num_classes} or use the matching annotation file")
        unknown = sorted({n for pair in d.train.flip_label_map.items() for n in pair} - set(annotation.labels))
        if unknown:
            problems.append(f"dataset.train.flip_label_map names labels that {annotation.path} lacks: {unknown[:3]}")
        return problems

    def flip_map(self, annotation: Annotation) -> dict[int, int]:
        """``dataset.train.flip_label_map`` as class indices of ``annotation``."""
        index = {n: i for i, n in enumerate(annotation.labels)}
        return {index[a]: index[b] for a, b in self.dataset.train.flip_label_map.items() if a in index and b in index}
