"""Temporal clip indices: pure functions from a video's length to frame indices (design.md §3).

All indices are 0-based. Indices past the end of a short video loop back (index mod n). Test clips are chosen
by one of :data:`CLIP_SELECTIONS` (``dataset.test.clip_selection``):

- ``uniform``: ``num_clips`` clips spread from the first frame to the last (vidrec's default, design.md §3);
- ``offset``: ``num_clips`` clips starting at ``floor(k · n / K)``, looped (video-nonlocal-net,
  ``DecodeClipFromVideoFileFlex``: ``use_start_frm = (int)(frame_gaps * start_frm) % num_of_frames``);
- ``stride``: a clip every ``clip_stride`` frames from frame 0 while the start is inside the video, the last
  one looped within its own window (3D-ResNets-PyTorch 2018 ``datasets/kinetics.py`` ``make_dataset`` with
  ``n_samples_for_each_video=0``, then ``LoopPadding``): every non-overlapping clip when the stride is the span;
- ``whole``: the whole video as one clip (every ``sample_rate``-th frame; DeepMind I3D feeds the video whole).
"""

from __future__ import annotations

import math

import torch

from vidrec.errors import ConfigError


def clip_span(clip_frames: int, sample_rate: int) -> int:
    """Number of source frames one clip covers: ``(clip_frames - 1) * sample_rate + 1``."""
    if clip_frames <= 0:
        raise ConfigError(f"clip.frames must be positive, got {clip_frames}; set dataset.clip.frames=16 or similar")
    if sample_rate <= 0:
        raise ConfigError(f"clip.sample_rate must be positive, got {sample_rate}; set dataset.clip.sample_rate=1 or more")
    return (clip_frames - 1) * sample_rate + 1


def _check_length(num_frames: int) -> None:
    if num_frames <= 0:
        raise ValueError(f"a video needs at least one frame, got num_frames={num_frames}")


def clip_from_start(start: int, num_frames: int, clip_frames: int, sample_rate: int) -> torch.Tensor:
    """Indices ``start, start + rate, ...`` (``clip_frames`` of them), looped modulo ``num_frames``."""
    _check_length(num_frames)
    steps = torch.arange(clip_frames, dtype=torch.int64) * sample_rate
    return (start + steps) % num_frames


def train_clip_indices(
    num_frames: int,
    clip_frames: int,
    sample_rate: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One training clip: a uniformly random start in ``[0, max(n - span, 0)]``. Returns int64 ``[clip_frames]``."""
    span = clip_span(clip_frames, sample_rate)
    _check_length(num_frames)
    high = max(num_frames - span, 0)
    start = int(torch.randint(0, high + 1, (1,), generator=generator))
    return clip_from_start(start, num_frames, clip_frames, sample_rate)


def test_clip_starts(num_frames: int, clip_frames: int, sample_rate: int, num_clips: int) -> list[int]:
    """Starts of ``num_clips`` uniformly spaced clips (first at frame 0, last ending on the last frame).

    ``start_k = round(k * (n - span) / (K - 1))`` with rounding half up; ``(n - span) // 2`` for K = 1.
    A video shorter than the span starts every clip at 0.
    """
    span = clip_span(clip_frames, sample_rate)
    _check_length(num_frames)
    if num_clips <= 0:
        raise ConfigError(f"test.num_clips must be positive, got {num_clips}")
    room = max(num_frames - span, 0)
    if num_clips == 1:
        return [room // 2]
    return [math.floor(k * room / (num_clips - 1) + 0.5) for k in range(num_clips)]


def test_clip_indices(num_frames: int, clip_frames: int, sample_rate: int, num_clips: int) -> torch.Tensor:
    """All test clips of a video as int64 ``[num_clips, clip_frames]`` (design.md §3)."""
    starts = test_clip_starts(num_frames, clip_frames, sample_rate, num_clips)
    return torch.stack([clip_from_start(s, num_frames, clip_frames, sample_rate) for s in starts])


CLIP_SELECTIONS = ("uniform", "offset", "stride", "whole")


def strided_clip_indices(num_frames: int, clip_frames: int, sample_rate: int, stride: int) -> torch.Tensor:
    """Clips starting at ``0, stride, 2·stride, ...`` before the last frame (3D-ResNets-PyTorch's 1-based ``for j in
    range(1, n_frames, step)``); a clip running past the end repeats its own frames from its start
    (LoopPadding). int64 ``[clips, clip_frames]``."""
    _check_length(num_frames)
    clip_span(clip_frames, sample_rate)
    if stride <= 0:
        raise ConfigError(f"test.clip_stride must be positive, got {stride}")
    clips = []
    for start in range(0, max(num_frames - 1, 1), stride):
        window = torch.arange(start, min(start + clip_frames * sample_rate, num_frames), sample_rate)
        clips.append(window.repeat(math.ceil(clip_frames / len(window)))[:clip_frames])
    return torch.stack(clips).to(torch.int64)


def offset_clip_indices(num_frames: int, clip_frames: int, sample_rate: int, num_clips: int) -> torch.Tensor:
    """``num_clips`` clips starting at ``floor(k · n / K)``, indices looped modulo n. int64 ``[K, clip_frames]``."""
    _check_length(num_frames)
    if num_clips <= 0:
        raise ConfigError(f"test.num_clips must be positive, got {num_clips}")
    starts = [(num_frames * k) // num_clips for k in range(num_clips)]
    return torch.stack([clip_from_start(s, num_frames, clip_frames, sample_rate) for s in starts])


def whole_video_indices(num_frames: int, sample_rate: int) -> torch.Tensor:
    """The whole video as one clip, every ``sample_rate``-th frame. int64 ``[1, ceil(n / rate)]``."""
    _check_length(num_frames)
    return torch.arange(0, num_frames, sample_rate, dtype=torch.int64)[None]


def test_clips(num_frames: int, clip_frames: int, sample_rate: int, selection: str = "uniform", num_clips: int = 1,
               clip_stride: int | None = None) -> torch.Tensor:
    """The test clips of a video by ``selection`` (one of :data:`CLIP_SELECTIONS`), int64 ``[clips, frames]``."""
    if selection == "uniform":
        return test_clip_indices(num_frames, clip_frames, sample_rate, num_clips)
    if selection == "offset":
        return offset_clip_indices(num_frames, clip_frames, sample_rate, num_clips)
    if selection == "stride":
        return strided_clip_indices(num_frames, clip_frames, sample_rate, clip_stride or clip_frames * sample_rate)
    if selection == "whole":
        return whole_video_indices(num_frames, sample_rate)
    raise ConfigError(f"test.clip_selection={selection}: use one of {', '.join(CLIP_SELECTIONS)}")


def val_clip_indices(num_frames: int, clip_frames: int, sample_rate: int) -> torch.Tensor:
    """The clip-level validation clip: the centre clip, int64 ``[clip_frames]``."""
    return test_clip_indices(num_frames, clip_frames, sample_rate, 1)[0]


# These are protocol functions, not pytest tests, even though their names start with "test_".
test_clip_starts.__test__ = False  # type: ignore[attr-defined]
test_clip_indices.__test__ = False  # type: ignore[attr-defined]
test_clips.__test__ = False  # type: ignore[attr-defined]
