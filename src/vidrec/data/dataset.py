"""VideoDataset: annotation entries → decoded, sampled, transformed clips (train / val / test modes)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from vidrec.data import decoding, isolation, sampling, stream
from vidrec.data.annotations import VideoEntry
from vidrec.data.spec import ClipConfig, DataSpec, Location
from vidrec.data.transforms import ClipTransform
from vidrec.errors import DecodeError, VidrecError

log = logging.getLogger(__name__)
MODES = ("train", "val", "test")


@dataclass
class VideoDataset(Dataset):
    """Clips of annotated videos.

    ``__getitem__`` takes an index or an ``(index, item_seed)`` pair from :class:`ShardedSampler` and returns
    a dict: ``video`` (uint8; train/val ``(C, T, H, W)``; test ``(views, C, T, H, W)``, clip-major), ``label``,
    ``index`` and ``ok``. A video that cannot be decoded comes back with ``ok=False`` and its reason (the
    collate function drops it and the module counts it), or raises in strict mode.
    """

    entries: list[VideoEntry]
    location: Location
    mode: str
    clip: ClipConfig
    transform: ClipTransform
    num_clips: int = 1
    selection: str = "uniform"  # how test clips are chosen (vidrec.data.sampling.test_clips)
    clip_stride: int | None = None
    flip: bool = False
    flip_label_map: dict[int, int] = field(default_factory=dict)
    strict: bool = False
    decoder: str = "auto"
    # decodes run in a supervised child process (vidrec.data.isolation); None: in this process
    decode_timeout_s: float | None = 60.0

    @classmethod
    def of_file(cls, path: Path, spec: DataSpec, transform: ClipTransform, decoder: str = "auto") -> VideoDataset:
        """The test views of one video file or frame folder, under ``spec``'s protocol (strict: errors raise)."""
        t = spec.dataset.test
        return cls(entries=[VideoEntry(path.name, "testing", None, -1, None)],
                   location=Location(str(path.parent), "frames" if path.is_dir() else "video", "{video_id}", ""),
                   mode="test", clip=spec.dataset.clip, transform=transform, num_clips=t.num_clips,
                   selection=t.clip_selection, clip_stride=t.clip_stride, strict=True, decoder=decoder,
                   decode_timeout_s=isolation.timeout_of(spec.data))

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")

    def __len__(self) -> int:
        return len(self.entries)

    def path(self, index: int) -> Path:
        return self.location.path(self.entries[index])

    def num_frames(self, index: int) -> int:
        """The entry's ``n_frames``, else the header's count; for a video that a read found truncated, the frames
        that decode (:func:`~vidrec.data.decoding.truncated_frame_count`)."""
        entry, path = self.entries[index], self.path(index)
        whole = self.mode == "test" and self.selection == "whole"  # every frame counts: decode them, not the header
        n = entry.n_frames or isolation.count_frames(path, exact=whole, timeout=self.decode_timeout_s)
        decoded = decoding.truncated_frame_count(path)
        return min(n, decoded) if decoded else n

    def fps(self, index: int) -> float:
        """The source frame rate of an entry: the annotation's ``fps``, a frame folder's ``fps`` file, a video's
        header (its average rate, which the authors' rules use); a clear error where none is recorded."""
        entry, path = self.entries[index], self.path(index)
        rate = entry.fps or (decoding.frame_folder_fps(path) if self.location.source == "frames" else stream.video_fps(path))
        if not rate:
            raise DecodeError(f"{path}: dataset.clip.fps={self.clip.fps} samples by time, but no frame rate is recorded "
                              "for this video; re-run the frame extraction (it writes an 'fps' file) and the annotation "
                              "script with --jpg-dir (it copies it), or leave dataset.clip.fps unset (frame-based)")
        return rate

    def indices(self, index: int, generator: torch.Generator, n: int | None = None) -> torch.Tensor:
        """Frame indices of the item (over ``n`` frames, default :meth:`num_frames`): ``[T]`` for train/val,
        ``[K, T]`` for test."""
        n, c = n or self.num_frames(index), self.clip
        if c.fps:  # by time, with the authors' rule (dataset.clip.fps, fps_rule)
            return sampling.timed_clips(n, self.fps(index), c.fps, c.fps_rule, c.frames, c.sample_rate, self.mode,
                                        self.selection, self.num_clips, self.clip_stride, generator)
        if self.mode in ("train", "val") and c.sampling == "segments":
            return sampling.segment_indices(n, c.frames, self.mode == "train", generator)
        if self.mode == "train" and c.sampling == "dense":
            return sampling.dense_indices(n, c.frames, generator, sample_range=c.frames * c.sample_rate)
        if self.mode == "train":
            return sampling.train_clip_indices(n, c.frames, c.sample_rate, generator)
        if self.mode == "val" and c.sampling == "dense":
            return sampling.dense_test_clips(n, c.frames, 1, sample_range=c.frames * c.sample_rate)[0]
        if self.mode == "val":
            return sampling.val_clip_indices(n, c.frames, c.sample_rate)
        return sampling.test_clips(n, c.frames, c.sample_rate, self.selection, self.num_clips, self.clip_stride)

    def load(self, index: int, generator: torch.Generator) -> tuple[torch.Tensor, int]:
        """Decode and transform one item; raises :class:`DecodeError` when the video is unreadable."""
        entry, path = self.entries[index], self.path(index)
        state, n = generator.get_state(), self.num_frames(index)
        idx = self.indices(index, generator, n)
        frames = isolation.read_frames(path, idx, backend=self.decoder, timeout=self.decode_timeout_s)
        decoded = decoding.truncated_frame_count(path)
        if decoded and decoded < n:  # this read found the video truncated: sample again from the frames that decode
            generator.set_state(state)  # the same draws as when the count is known beforehand
            idx = self.indices(index, generator, decoded)
            frames = isolation.read_frames(path, idx, backend=self.decoder, timeout=self.decode_timeout_s)
        label = entry.label_index
        if self.mode == "train":
            flip = self.flip and bool(torch.rand((), generator=generator) < 0.5)
            if flip:
                label = self.flip_label_map.get(label, label)
            return self.transform.train_clip(frames, flip, generator), label
        if self.mode == "val":
            return self.transform.eval_views(frames, num_crops=1)[0], label
        clips = frames.view(idx.shape[0], idx.shape[1], *frames.shape[1:])
        return torch.cat([self.transform.eval_views(c) for c in clips]), label

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[int | tuple[int, int]]) -> list[dict[str, Any]]:
        """The items of a loader batch; with supervised decoding, decoded and transformed in the decoder child in
        one round trip (:func:`vidrec.data.isolation.map_items`), a crash or a hang costing only its video."""
        if self.decode_timeout_s is None:
            return [self._item(key) for key in keys]
        items = isolation.map_items(self, "_child_item", keys, self.decode_timeout_s, lambda k: str(self.path(_index(k))))
        out = []
        for key, item in zip(keys, items):
            if isinstance(item, DecodeError):  # the child crashed or hung on this video
                out.append(self._skip(_index(key), item))
                continue
            counts = item.pop("truncation")
            if counts:  # the child found the video truncated: warn here once; this process's reads know it now
                decoding.note_count(self.path(item["index"]), *counts)
            if item["ok"]:
                item["video"] = torch.from_numpy(item["video"])
            out.append(item)
        return out

    def _child_item(self, key: int | tuple[int, int]) -> dict[str, Any]:
        """:meth:`_item` as the decoder child returns it: the clip as a numpy array, the truncation it found."""
        item = self._item(key)
        item["truncation"] = decoding.truncation(self.path(item["index"]))
        if item["ok"]:
            item["video"] = item["video"].contiguous().numpy()
        return item

    def _item(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = key if isinstance(key, tuple) else (key, index_seed(key))
        generator = torch.Generator().manual_seed(seed)
        try:
            video, label = self.load(index, generator)
        except DecodeError as exc:
            return self._skip(index, exc)
        except VidrecError:
            raise
        except Exception as exc:  # a bug or a library failure: name the video so the worker crash is traceable
            raise VidrecError(f"loading {self.path(index)} failed: {type(exc).__name__}: {exc}") from exc
        return {"ok": True, "video": video, "label": label, "index": index}

    def _skip(self, index: int, exc: DecodeError) -> dict[str, Any]:
        if self.strict:
            raise DecodeError(f"{exc} (data.strict=true makes an unreadable video fatal)") from None
        return {"ok": False, "index": index, "video_id": self.entries[index].video_id, "reason": str(exc)}


def _index(key: int | tuple[int, int]) -> int:
    return key[0] if isinstance(key, tuple) else key


def index_seed(index: int) -> int:
    """Seed for an item requested by plain index (no sampler seed)."""
    return int(index) * 2654435761 % (1 << 63)


def collate_clips(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the decodable items; keep the others as ``skipped`` records ``(index, video_id, reason)``."""
    good = [it for it in items if it["ok"]]
    skipped = [(it["index"], it["video_id"], it["reason"]) for it in items if not it["ok"]]
    batch: dict[str, Any] = {"skipped": skipped}
    if good:
        batch["video"] = torch.stack([it["video"] for it in good])
        batch["label"] = torch.tensor([it["label"] for it in good], dtype=torch.int64)
        batch["index"] = torch.tensor([it["index"] for it in good], dtype=torch.int64)
    return batch


def existing_entries(entries: list[VideoEntry], location: Location) -> tuple[list[VideoEntry], list[VideoEntry]]:
    """Split entries into those whose frames/video exist and those missing on disk (:meth:`Location.is_present`)."""
    present, missing = [], []
    for e in entries:
        (present if location.is_present(e) else missing).append(e)
    return present, missing
