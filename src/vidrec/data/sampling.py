"""Temporal clip indices: pure functions from a video's length to frame indices (design.md §3).

All indices are 0-based. Indices past the end of a short video loop back (index mod n). Test clips are chosen
by one of :data:`CLIP_SELECTIONS` (``dataset.test.clip_selection``):

- ``uniform``: ``num_clips`` clips spread from the first frame to the last (vidrec's default, design.md §3);
- ``offset``: ``num_clips`` clips starting at ``floor(k · n / K)``, looped (video-nonlocal-net,
  ``DecodeClipFromVideoFileFlex``: ``use_start_frm = (int)(frame_gaps * start_frm) % num_of_frames``);
- ``stride``: a clip every ``clip_stride`` frames from frame 0 while the start is inside the video, the last
  one looped within its own window (3D-ResNets-PyTorch 2018 ``datasets/kinetics.py`` ``make_dataset`` with
  ``n_samples_for_each_video=0``, then ``LoopPadding``): every non-overlapping clip when the stride is the span;
- ``whole``: the whole video as one clip (every ``sample_rate``-th frame; DeepMind I3D feeds the video whole);
- ``segments``: TSN/TSM segment sampling, ``clip.frames`` = the number of segments N, ``sample_rate`` unused:
  ``num_clips`` 1 = the centre frame of each of N equal segments, 2 = those plus the first frame of each segment
  (TSM's ``twice_sample``) — :func:`segment_test_clips`;
- ``dense``: TSM's I3D-style "dense" test: ``num_clips`` (the authors: 10) clips of N frames ``sample_rate`` apart,
  starts spread over ``[0, n - N·rate]`` — :func:`dense_test_clips` with ``sample_range = N · sample_rate``
  (the authors' 64 with stride 64 // N: ``clip.frames=8 clip.sample_rate=8`` or ``16`` and ``4``).

Segment sampling for training is :func:`segment_indices` (``train=True``) or :func:`dense_indices`.
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


CLIP_SELECTIONS = ("uniform", "offset", "stride", "whole", "segments", "dense")


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
    if selection == "segments":
        if num_clips not in (1, 2):
            raise ConfigError(f"test.clip_selection=segments takes test.num_clips 1 (centre) or 2 (TSM's twice "
                              f"sample), got {num_clips}")
        return segment_test_clips(num_frames, clip_frames, twice=num_clips == 2)
    if selection == "dense":
        return dense_test_clips(num_frames, clip_frames, num_clips, sample_range=clip_frames * sample_rate)
    raise ConfigError(f"test.clip_selection={selection}: use one of {', '.join(CLIP_SELECTIONS)}")


def val_clip_indices(num_frames: int, clip_frames: int, sample_rate: int) -> torch.Tensor:
    """The clip-level validation clip: the centre clip, int64 ``[clip_frames]``."""
    return test_clip_indices(num_frames, clip_frames, sample_rate, 1)[0]


# ------------------------------------------------------------------ segments (TSN / TSM)
# The authors' code: mit-han-lab/temporal-shift-module ops/dataset.py@d6da93d (TSM) and open-mmlab/mmaction2
# mmaction/datasets/transforms/loading.py@96d20d38 (``SampleFrames(clip_len=1, num_clips=N)``, ``DenseSampleFrames``).
# TSM returns ``offsets + 1`` (dataset.py:117, 127, 142, 152, 159, 163) because its frame files are numbered from 1
# (``img_%05d.jpg``, tools/vid2img_kinetics.py:37; ``get`` reads file ``p = offset + 1``, dataset.py:199-209):
# the 0-based frame index is the offset itself, which is what these functions return. mmaction2 is 0-based already
# (``start_index`` 0 for videos). RGB frames have ``new_length`` 1 (one frame per segment) throughout.


def _check_segments(num_frames: int, num_segments: int) -> None:
    _check_length(num_frames)
    if num_segments <= 0:
        raise ConfigError(f"the number of segments (clip.frames) must be positive, got {num_segments}")


def segment_indices(num_frames: int, num_segments: int, train: bool,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """One frame from each of ``num_segments`` equal segments, 0-based int64 ``[num_segments]`` (TSN/TSM).

    Train (TSM ``_sample_indices``, dataset.py:119-127; mmaction2 ``_get_train_clips``, loading.py:257-262): segment
    length ``n // N``, a uniformly random frame inside each segment; a video shorter than N frames gives all zeros
    (dataset.py:125-126; mmaction2 spreads ``round(k·n/N)`` instead, loading.py:267-269). TSM's "sorted random frames"
    branch (dataset.py:123-124) needs ``n // N == 0`` with ``n > N``, which happens only for ``new_length > 1``
    (flow stacks), so it never runs for RGB; a video of exactly N frames takes the first branch (frames 0..N-1).
    Test (TSM ``_get_test_indices``, dataset.py:160-163; mmaction2 ``_get_test_clips`` with ``clip_len == 1``,
    loading.py:289-293 then ``astype(int32)`` at :394): ``int(tick / 2 + tick · k)`` with ``tick = n / N``, the
    centre of each segment, for every n ≥ 1 (TSM's ``_get_val_indices``, used for validation during training, gives
    zeros when ``n <= N``, dataset.py:137-141; the test path has no such fallback and never leaves the video).
    """
    _check_segments(num_frames, num_segments)
    if not train:
        tick = num_frames / float(num_segments)
        return torch.tensor([int(tick / 2.0 + tick * k) for k in range(num_segments)], dtype=torch.int64)
    length = num_frames // num_segments
    if length == 0:
        return torch.zeros(num_segments, dtype=torch.int64)
    jitter = torch.randint(0, length, (num_segments,), generator=generator)
    return torch.arange(num_segments, dtype=torch.int64) * length + jitter


def segment_test_clips(num_frames: int, num_segments: int, twice: bool = False) -> torch.Tensor:
    """The test samplings of a video, int64 ``[1 or 2, num_segments]``: the segment centres, and with ``twice``
    also the segment starts ``int(tick · k)`` (TSM's ``twice_sample``, dataset.py:153-159, tested with
    ``--twice_sample``, test_models.py:224-225; mmaction2 ``twice_sample``, loading.py:294-295: centres first)."""
    centre = segment_indices(num_frames, num_segments, train=False)
    if not twice:
        return centre[None]
    tick = num_frames / float(num_segments)
    starts = torch.tensor([int(tick * k) for k in range(num_segments)], dtype=torch.int64)
    return torch.stack([centre, starts])


def _dense_geometry(num_frames: int, num_segments: int, sample_range: int) -> tuple[int, int]:
    _check_segments(num_frames, num_segments)
    if sample_range < num_segments:
        raise ConfigError(f"dense sampling needs sample_range ({sample_range}) >= the number of segments "
                          f"({num_segments})")
    return max(1, 1 + num_frames - sample_range), sample_range // num_segments


def dense_indices(num_frames: int, num_segments: int, generator: torch.Generator | None = None,
                  sample_range: int = 64) -> torch.Tensor:
    """TSM's "dense" (I3D-style) training clip, int64 ``[num_segments]``: ``N`` frames ``sample_range // N`` apart
    from a random start, looped modulo n (dataset.py:112-117; mmaction2 ``DenseSampleFrames``, loading.py:628-634).
    The start is drawn as the authors draw it, ``randint(0, sample_pos - 1)`` with an exclusive upper bound
    (``sample_pos = max(1, 1 + n - sample_range)``), so the last start position is never drawn."""
    sample_pos, stride = _dense_geometry(num_frames, num_segments, sample_range)
    start = 0 if sample_pos == 1 else int(torch.randint(0, sample_pos - 1, (1,), generator=generator))
    return (torch.arange(num_segments, dtype=torch.int64) * stride + start) % num_frames


def _linspace_floor(stop: int, num: int) -> list[int]:
    """``np.linspace(0, stop, num, dtype=int)`` as numpy computes it: ``floor(i · (stop / (num - 1)))`` in float64,
    the last value ``stop`` exactly."""
    if num == 1:
        return [0]
    step = stop / (num - 1)
    return [math.floor(i * step) for i in range(num - 1)] + [stop]


def dense_test_clips(num_frames: int, num_segments: int, num_clips: int = 10, sample_range: int = 64) -> torch.Tensor:
    """TSM's dense test: ``num_clips`` clips whose starts are ``np.linspace(0, sample_pos - 1, num_clips,
    dtype=int)``, each of N frames ``sample_range // N`` apart, looped modulo n; int64 ``[num_clips, N]``
    (dataset.py:145-152 with 10 clips, test_models.py:221-222; mmaction2 ``DenseSampleFrames`` test mode,
    ``num_sample_positions=10``, loading.py:650-659)."""
    if num_clips <= 0:
        raise ConfigError(f"test.num_clips must be positive, got {num_clips}")
    sample_pos, stride = _dense_geometry(num_frames, num_segments, sample_range)
    starts = torch.tensor(_linspace_floor(sample_pos - 1, num_clips), dtype=torch.int64)
    return (starts[:, None] + torch.arange(num_segments, dtype=torch.int64) * stride) % num_frames


# These are protocol functions, not pytest tests, even though their names start with "test_".
test_clip_starts.__test__ = False  # type: ignore[attr-defined]
test_clip_indices.__test__ = False  # type: ignore[attr-defined]
test_clips.__test__ = False  # type: ignore[attr-defined]


# ------------------------------------------------------------------ frame rate: sampling by time (dataset.clip.fps)
#: The authors' rules for sampling a clip at a target frame rate (``dataset.clip.fps_rule``):
#:
#: - ``torchvision``: the video is first resampled to the target rate — ``floor(n · target / fps)`` frames, frame k
#:   being source frame ``floor(k · fps / target)``; an integer ratio takes every ``fps/target``-th frame (torchvision
#:   0.29.1 ``datasets/video_utils.py:216-217`` ``compute_clips_for_video``, ``:280-289`` ``_resample_video_idx``) —
#:   then clips are drawn from the resampled frames as without a rate.
#: - ``deepmind``: the same resampling: DeepMind's README says frames are sampled at 25 fps, their resampling code
#:   is not published (kinetics-i3d README, "Sample data and preprocessing").
#: - ``pyslowfast``: no resampling; a clip covers ``sample_rate · frames · fps / target`` source frames and takes
#:   ``frames`` indices ``linspace(start, end)`` over them, clamped to the video (PySlowFast
#:   ``slowfast/datasets/decoder.py@198bf9d:59-76`` ``get_start_end_idx``, ``:31-32`` ``temporal_sampling``).
#:   Train: a random start in ``[0, max(n - size, 0)]``; test clip k of K: ``start = (n - size) · k / K``.
FPS_RULES = ("torchvision", "deepmind", "pyslowfast")


def _check_rate(fps: float | None, target: float) -> float:
    if not fps or fps <= 0:
        raise ConfigError(f"sampling at dataset.clip.fps={target} needs the video's frame rate, which is unknown")
    if target <= 0:
        raise ConfigError(f"dataset.clip.fps must be positive, got {target}")
    return float(fps)


def resampled_frames(num_frames: int, fps: float, target_fps: float) -> torch.Tensor:
    """Source indices of a video of ``num_frames`` at ``fps`` resampled to ``target_fps`` (the ``torchvision`` rule),
    int64 ``[floor(n · target / fps)]`` (at least one frame)."""
    _check_length(num_frames)
    fps = _check_rate(fps, target_fps)
    step = fps / target_fps
    if float(step).is_integer():  # torchvision's slice(None, None, step): every step-th frame, ceil(n / step) of them
        return torch.arange(0, num_frames, int(step), dtype=torch.int64)
    count = max(1, math.floor(num_frames * target_fps / fps))
    return (torch.arange(count, dtype=torch.float32) * step).floor().to(torch.int64).clamp_(max=num_frames - 1)


def pyslowfast_clip(num_frames: int, fps: float, target_fps: float, clip_frames: int, sample_rate: int,
                    start_fraction: float | None, generator: torch.Generator | None = None) -> torch.Tensor:
    """One clip by the ``pyslowfast`` rule: ``clip_frames`` indices over ``sample_rate · clip_frames · fps / target``
    source frames from a random start (``start_fraction=None``) or from ``start_fraction · (n - size)``."""
    _check_length(num_frames)
    fps = _check_rate(fps, target_fps)
    size = sample_rate * clip_frames / target_fps * fps
    delta = max(num_frames - size, 0)
    if start_fraction is None:
        start = float(torch.rand((), generator=generator)) * delta  # random.uniform(0, delta) in decoder.py
    else:
        start = delta * start_fraction
    index = torch.linspace(start, start + size - 1, clip_frames)
    return index.clamp(0, num_frames - 1).long()


def timed_clips(num_frames: int, fps: float, target_fps: float, rule: str, clip_frames: int, sample_rate: int,
                mode: str, selection: str = "uniform", num_clips: int = 1, clip_stride: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """The frame indices of a video sampled at ``target_fps`` by ``rule`` (:data:`FPS_RULES`): ``[T]`` for
    ``mode`` train / val, ``[clips, T]`` for test (``selection`` as :func:`test_clips`)."""
    if rule not in FPS_RULES:
        raise ConfigError(f"dataset.clip.fps_rule={rule}: use one of {', '.join(FPS_RULES)}")
    if rule == "pyslowfast":
        if mode == "train":
            return pyslowfast_clip(num_frames, fps, target_fps, clip_frames, sample_rate, None, generator)
        if mode == "val":
            return pyslowfast_clip(num_frames, fps, target_fps, clip_frames, sample_rate, 0.5)
        if selection not in ("uniform", "offset"):
            raise ConfigError(f"dataset.clip.fps_rule=pyslowfast places its own test clips: use "
                              f"dataset.test.clip_selection=uniform, not {selection}")
        return torch.stack([pyslowfast_clip(num_frames, fps, target_fps, clip_frames, sample_rate, k / num_clips)
                            for k in range(num_clips)])
    table = resampled_frames(num_frames, fps, target_fps)
    m = len(table)
    if mode == "train":
        return table[train_clip_indices(m, clip_frames, sample_rate, generator)]
    if mode == "val":
        return table[val_clip_indices(m, clip_frames, sample_rate)]
    return table[test_clips(m, clip_frames, sample_rate, selection, num_clips, clip_stride)]
