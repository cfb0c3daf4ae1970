"""Sampling tables of design.md §3 (train bounds, test starts, looping short videos)."""

import pytest
import torch

import vidrec.data.sampling as S
from vidrec.errors import ConfigError

torch.set_num_threads(1)


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
    with pytest.raises(ConfigError, match="clip_selection=random"):
        S.test_clips(40, 16, 1, "random")


# ------------------------------------------------------------------ TSN / TSM segments
# Tables written from the authors' formulas (temporal-shift-module ops/dataset.py, 1-based there: minus 1 here):
# test  int(tick / 2 + tick * k), tick = n / N;  twice  also int(tick * k);  dense  starts
# np.linspace(0, max(1, 1 + n - 64) - 1, 10, dtype=int), frames (start + k * (64 // N)) % n.
@pytest.mark.parametrize("n,segments,centre,starts", [
    (300, 8, [18, 56, 93, 131, 168, 206, 243, 281], [0, 37, 75, 112, 150, 187, 225, 262]),
    (100, 3, [16, 50, 83], [0, 33, 66]),
    (37, 5, [3, 11, 18, 25, 33], [0, 7, 14, 22, 29]),
    (10, 8, [0, 1, 3, 4, 5, 6, 8, 9], [0, 1, 2, 3, 5, 6, 7, 8]),
    (8, 8, [0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3, 4, 5, 6, 7]),
    (3, 8, [0, 0, 0, 1, 1, 2, 2, 2], [0, 0, 0, 1, 1, 1, 2, 2]),  # shorter than N: the test formula still applies
    (1, 8, [0] * 8, [0] * 8),
])
def test_segment_test_table(n, segments, centre, starts):
    idx = S.segment_indices(n, segments, train=False)
    assert idx.dtype == torch.int64 and idx.tolist() == centre
    assert S.segment_test_clips(n, segments).tolist() == [centre]
    assert S.segment_test_clips(n, segments, twice=True).tolist() == [centre, starts]  # centres first, as the authors
    assert torch.equal(S.test_clips(n, segments, 5, "segments", 2), S.segment_test_clips(n, segments, twice=True))


def tsm_test_indices(n, segments, twice=False):
    """temporal-shift-module ops/dataset.py _get_test_indices (new_length 1), transcribed, made 0-based."""
    tick = (n - 1 + 1) / float(segments)
    offsets = [int(tick / 2.0 + tick * x) for x in range(segments)]
    if twice:
        offsets += [int(tick * x) for x in range(segments)]
    return offsets


@pytest.mark.parametrize("segments", [1, 3, 8, 16])
def test_segment_test_matches_the_transcription(segments):
    for n in range(1, 400):
        assert S.segment_test_clips(n, segments, twice=True).flatten().tolist() == tsm_test_indices(n, segments, True)


@pytest.mark.parametrize("n,segments", [(100, 8), (300, 16), (17, 4), (9, 8)])
def test_segment_train_draws_one_frame_per_segment(n, segments):
    gen = torch.Generator().manual_seed(0)
    length = n // segments
    draws = torch.stack([S.segment_indices(n, segments, True, gen) for _ in range(600)])
    assert draws.dtype == torch.int64 and draws.shape == (600, segments)
    low = torch.arange(segments) * length
    assert ((draws >= low) & (draws < low + length)).all()  # inside segment k: [k·(n//N), (k+1)·(n//N))
    for k in range(segments):  # every frame of each segment is drawn
        assert set(draws[:, k].tolist()) == set(range(k * length, (k + 1) * length))


def test_segment_train_short_videos_and_seeding():
    assert S.segment_indices(5, 8, True).tolist() == [0] * 8  # n < N: the authors' zeros (dataset.py:125-126)
    assert S.segment_indices(8, 8, True).tolist() == list(range(8))  # n == N: one frame per segment
    a = S.segment_indices(1000, 8, True, torch.Generator().manual_seed(4))
    b = S.segment_indices(1000, 8, True, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="segments"):
        S.segment_indices(10, 0, True)


@pytest.mark.parametrize("n,segments,rate,clips", [
    (300, 8, 8, [[s + 8 * k for k in range(8)] for s in (0, 26, 52, 78, 104, 131, 157, 183, 209, 236)]),
    (100, 8, 8, [[s + 8 * k for k in range(8)] for s in range(0, 40, 4)]),
    (64, 8, 8, [[8 * k for k in range(8)]] * 10),                 # sample_pos 1: every clip starts at 0
    (30, 8, 8, [[0, 8, 16, 24, 2, 10, 18, 26]] * 10),             # looped modulo n
    (300, 16, 4, [[s + 4 * k for k in range(16)] for s in (0, 26, 52, 78, 104, 131, 157, 183, 209, 236)]),
])
def test_dense_test_table(n, segments, rate, clips):
    assert S.dense_test_clips(n, segments, 10, sample_range=64).tolist() == clips
    assert S.test_clips(n, segments, rate, "dense", 10).tolist() == clips  # sample_range = frames · rate = 64


def test_dense_train_start_range():
    gen = torch.Generator().manual_seed(0)
    starts = {int(S.dense_indices(70, 8, gen)[0]) for _ in range(400)}
    assert starts == set(range(6))  # sample_pos 7, randint(0, 6): the last position (6) is never drawn
    clip = S.dense_indices(70, 8, torch.Generator().manual_seed(1))
    assert torch.equal(torch.diff(clip), torch.full((7,), 8))
    assert S.dense_indices(40, 8).tolist() == [0, 8, 16, 24, 32, 0, 8, 16]  # short: start 0, looped


def test_segment_selections_are_listed():
    assert {"segments", "dense"} <= set(S.CLIP_SELECTIONS)
    with pytest.raises(ConfigError, match="num_clips 1 .* or 2"):
        S.test_clips(100, 8, 1, "segments", 3)
