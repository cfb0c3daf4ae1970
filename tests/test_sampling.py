"""Sampling tables of design.md §3 (train bounds, test starts, looping short videos)."""

import pytest
import torch

import vidrec.data.sampling as S
from vidrec.errors import ConfigError


@pytest.mark.parametrize("frames,rate,span", [(16, 4, 61), (32, 2, 63), (8, 1, 8), (1, 5, 1)])
def test_span(frames, rate, span):
    assert S.clip_span(frames, rate) == span


@pytest.mark.parametrize("n,frames,rate,clips,starts", [
    (300, 32, 2, 10, [0, 26, 53, 79, 105, 132, 158, 184, 211, 237]),  # the worked example
    (300, 32, 2, 1, [118]),            # K = 1: (n - span) // 2
    (100, 16, 4, 3, [0, 20, 39]),      # span 61, room 39: last clip ends on the last frame
    (61, 16, 4, 5, [0, 0, 0, 0, 0]),   # exactly one span
    (30, 16, 4, 4, [0, 0, 0, 0]),      # shorter than the span: clips start at 0 and loop
])
def test_test_clip_starts(n, frames, rate, clips, starts):
    assert S.test_clip_starts(n, frames, rate, clips) == starts
    idx = S.test_clip_indices(n, frames, rate, clips)
    assert idx.shape == (clips, frames) and idx.dtype == torch.int64
    assert idx[:, 0].tolist() == [s % n for s in starts]


def test_last_test_clip_ends_on_last_frame():
    idx = S.test_clip_indices(300, 32, 2, 10)
    assert int(idx[-1, -1]) == 299 and int(idx[0, 0]) == 0


def test_short_video_loops_back():
    idx = S.test_clip_indices(10, 8, 2, 1)
    assert idx[0].tolist() == [0, 2, 4, 6, 8, 0, 2, 4]
    assert S.train_clip_indices(5, 4, 2).tolist() == [0, 2, 4, 1]


@pytest.mark.parametrize("n", [1, 10, 61, 62, 100, 1000])
def test_train_clip_bounds(n):
    gen = torch.Generator().manual_seed(0)
    span = S.clip_span(16, 4)
    starts = {int(S.train_clip_indices(n, 16, 4, gen)[0]) for _ in range(400)}
    assert min(starts) >= 0 and max(starts) <= max(n - span, 0)
    if 3 <= n - span <= 50:  # small ranges: both ends are drawn within 400 tries
        assert 0 in starts and n - span in starts
    clip = S.train_clip_indices(n, 16, 4, gen)
    assert (clip < n).all() and clip.shape == (16,)


def test_train_sampling_is_seeded():
    a = S.train_clip_indices(500, 16, 4, torch.Generator().manual_seed(3))
    b = S.train_clip_indices(500, 16, 4, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_val_clip_is_centre():
    assert S.val_clip_indices(100, 16, 4)[0] == (100 - 61) // 2


@pytest.mark.parametrize("frames,rate", [(0, 1), (4, 0), (-1, 2)])
def test_bad_clip_config(frames, rate):
    with pytest.raises(ConfigError, match="must be positive"):
        S.clip_span(frames, rate)


@pytest.mark.parametrize("n,frames,rate,stride,clips", [
    # 3D-ResNets-PyTorch: 1-based starts range(1, n, 16), the last window looped within itself
    (40, 16, 1, 16, [list(range(16)), list(range(16, 32)), [*range(32, 40), *range(32, 40)]]),
    (33, 16, 1, 16, [list(range(16)), list(range(16, 32))]),  # start 33 is not < n_frames: no third clip
    (5, 4, 2, 4, [[0, 2, 4, 0]]),
    (1, 4, 1, 4, [[0, 0, 0, 0]]),
])
def test_strided_clips(n, frames, rate, stride, clips):
    assert S.strided_clip_indices(n, frames, rate, stride).tolist() == clips


@pytest.mark.parametrize("n,frames,rate,k,starts", [
    (100, 4, 2, 3, [0, 33, 66]),  # video-nonlocal-net: floor(n·k/K)
    (300, 32, 2, 10, [0, 30, 60, 90, 120, 150, 180, 210, 240, 270]),
])
def test_offset_clips(n, frames, rate, k, starts):
    clips = S.offset_clip_indices(n, frames, rate, k)
    assert clips[:, 0].tolist() == starts
    assert clips.tolist()[-1] == [(starts[-1] + i * rate) % n for i in range(frames)]  # looped past the end


def test_whole_video_and_the_selection_table():
    assert S.whole_video_indices(7, 2).tolist() == [[0, 2, 4, 6]]
    assert torch.equal(S.test_clips(50, 4, 2, "uniform", 3), S.test_clip_indices(50, 4, 2, 3))
    assert S.test_clips(40, 16, 1, "stride").shape == (3, 16)  # default stride: the span
    with pytest.raises(ConfigError, match="clip_selection=dense"):
        S.test_clips(40, 16, 1, "dense")
