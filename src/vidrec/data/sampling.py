"""Temporal samplers: pure functions from a video's length to frame indices (design.md §3).

All indices are 0-based. Indices past the end of a short video loop back (index mod n).
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


def val_clip_indices(num_frames: int, clip_frames: int, sample_rate: int) -> torch.Tensor:
    """The clip-level validation clip: the centre clip, int64 ``[clip_frames]``."""
    return test_clip_indices(num_frames, clip_frames, sample_rate, 1)[0]


# These are protocol functions, not pytest tests, even though their names start with "test_".
test_clip_starts.__test__ = False  # type: ignore[attr-defined]
test_clip_indices.__test__ = False  # type: ignore[attr-defined]
