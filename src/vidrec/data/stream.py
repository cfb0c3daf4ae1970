"""Streamed decoding: a video's frames in order (PyAV, or a frame folder's images), and sliding windows over
them held in a rolling buffer, so memory stays that of one window however long the video is."""

from __future__ import annotations

import collections
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from vidrec.data.decoding import folder_num_frames, is_frame_folder, read_frames
from vidrec.data.video_seek import rgb
from vidrec.errors import ConfigError, DecodeError


def video_fps(path: str | os.PathLike) -> float | None:
    """Frames per second of a video file from its header; ``None`` for a frame folder or an unknown rate."""
    if is_frame_folder(path):
        return None
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise DecodeError(f"{path}: the file has no video stream")
            rate = container.streams.video[0].average_rate
    except av.FFmpegError as exc:
        raise DecodeError(f"{path}: cannot open ({exc})") from None
    return float(rate) if rate else None


def iter_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Every frame of a video file (decoded sequentially) or frame folder, in order, as uint8 ``(H, W, 3)``."""
    path = Path(path)
    if not path.exists():
        raise DecodeError(f"{path}: no such video file or frame folder")
    if is_frame_folder(path):
        for i in range(folder_num_frames(path)):
            yield read_frames(path, [i])[0].numpy()
        return
    count = 0
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise DecodeError(f"{path}: the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            reformatter = VideoReformatter()
            for frame in container.decode(stream):
                count += 1
                yield rgb(frame, reformatter)
    except av.FFmpegError as exc:
        if count == 0:
            raise DecodeError(f"{path}: cannot decode ({type(exc).__name__}: {exc})") from None
        return  # a damaged tail: the frames before it stand
    if count == 0:
        raise DecodeError(f"{path}: no decodable video frames")


@dataclass
class SlidingClips:
    """Clips of a stream: a window of ``offsets.max() + 1`` frames every ``stride`` frames, each clip the window's
    frames at ``offsets``. Only the last window's frames are held (``held`` counts them; ``peak`` is the most ever
    held). A stream shorter than one window gives one clip looped over the frames it has (LoopPadding)."""

    offsets: torch.Tensor
    stride: int
    held: int = 0
    peak: int = 0
    frames_seen: int = 0
    _buffer: collections.deque = field(default_factory=collections.deque, repr=False)

    def __post_init__(self) -> None:
        if self.stride <= 0:
            raise ConfigError(f"a window stride must be positive, got {self.stride}")
        self.window = int(self.offsets.max()) + 1
        self._buffer = collections.deque(maxlen=self.window)

    def __call__(self, frames: Iterator[np.ndarray]) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(start frame, uint8 clip (T, H, W, 3))`` for each window of ``frames``."""
        offsets = self.offsets.tolist()
        yielded = False
        for i, frame in enumerate(frames):
            self._buffer.append(frame)
            self.frames_seen = i + 1
            self.held = len(self._buffer)
            self.peak = max(self.peak, self.held)
            start = i - self.window + 1
            if start >= 0 and start % self.stride == 0:
                yielded = True
                yield start, torch.from_numpy(np.stack([self._buffer[k] for k in offsets]))
        if not yielded and self._buffer:
            n = len(self._buffer)
            yield 0, torch.from_numpy(np.stack([self._buffer[k % n] for k in offsets]))
        self._buffer.clear()
        self.held = 0


def clip_offsets(clip_frames: int, sample_rate: int, window: int | None = None, fps: float | None = None,
                 target_fps: float | None = None, rule: str = "torchvision") -> torch.Tensor:
    """Frame offsets of a clip inside its window: every ``sample_rate``-th frame, or, for a given ``window``
    length, ``clip_frames`` offsets spread evenly over it. With ``target_fps`` (``dataset.clip.fps``) and the
    video's ``fps``, the offsets a clip starting at the window's first frame has under the authors' rule
    (:func:`vidrec.data.sampling.timed_clips`): the resampled frames ``sample_rate`` apart, or PySlowFast's
    linspace over ``sample_rate · frames · fps / target`` frames."""
    if window is not None:
        if window < 1:
            raise ConfigError(f"timeline.window must be at least 1 frame, got {window}")
        return torch.linspace(0, window - 1, clip_frames).round().to(torch.int64)
    if target_fps:
        from vidrec.data.sampling import pyslowfast_clip, resampled_frames

        if rule == "pyslowfast":
            size = math.ceil(sample_rate * clip_frames / target_fps * fps)
            return pyslowfast_clip(size, fps, target_fps, clip_frames, sample_rate, 0.0)
        span = (clip_frames - 1) * sample_rate + 1
        table = resampled_frames(math.ceil(span * fps / target_fps) + 1, fps, target_fps)
        return table[torch.arange(clip_frames) * sample_rate]
    return torch.arange(clip_frames, dtype=torch.int64) * sample_rate
