"""Sampling by time (``dataset.clip.fps``): the authors' rules table-tested, and the pipeline's indices on real files
at 24, 25, 29.97, 30 and 60 fps and on a variable-frame-rate file, from videos and from frame folders."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from conftest import moving_bar_frames
from vidrec.data.annotations import VideoEntry
from vidrec.data.dataset import VideoDataset
from vidrec.data.sampling import pyslowfast_clip, resampled_frames, timed_clips
from vidrec.data.spec import ClipConfig, DataSpec, Location
from vidrec.data.synthetic import write_video
from vidrec.data.transforms import ClipTransform
from vidrec.errors import ConfigError, DecodeError

torch.set_num_threads(1)


# ------------------------------------------------------------------ the rules, written out independently
def torchvision_rule(n: int, fps: float, target: float) -> list[int]:
    """torchvision 0.29.1 video_utils.py:216-217, 280-289, in plain Python."""
    step = fps / target
    if step == int(step):
        return list(range(0, n, int(step)))
    return [math.floor(np.float32(k) * np.float32(step)) for k in range(math.floor(n * target / fps))]


def pyslowfast_rule(n: int, fps: float, target: float, frames: int, rate: int, k: int, clips: int) -> list[int]:
    """PySlowFast decoder.py@198bf9d:59-76 (get_start_end_idx, test) and :31-32 (temporal_sampling)."""
    size = rate * frames / target * fps
    delta = max(n - size, 0)
    start = delta * k / clips
    return torch.linspace(start, start + size - 1, frames).clamp(0, n - 1).long().tolist()


@pytest.mark.parametrize("fps", [24.0, 25.0, 30000 / 1001, 30.0, 60.0, 15.0])
@pytest.mark.parametrize("n", [1, 7, 150, 301])
def test_torchvision_resampling_table(fps, n):
    expected = torchvision_rule(n, fps, 15) or [0]  # a video shorter than one resampled frame keeps its first
    assert resampled_frames(n, fps, 15).tolist() == expected


def test_resampling_examples():
    assert resampled_frames(10, 30, 15).tolist() == [0, 2, 4, 6, 8]  # every other frame
    assert resampled_frames(12, 29.97, 15).tolist()[:6] == [0, 1, 3, 5, 7, 9]  # floor(k · 1.998)
    # the count is floor(n · target / fps): 8 · 15 / 24 = 5 → floor(k · 1.6) for k < 5
    assert len(resampled_frames(8, 24, 15)) == 5 and resampled_frames(8, 24, 15).tolist() == [0, 1, 3, 4, 6]


@pytest.mark.parametrize("fps", [24.0, 25.0, 30000 / 1001, 30.0, 60.0])
def test_pyslowfast_rule_table(fps):
    for n in (40, 64, 300):
        for k in range(3):
            expected = pyslowfast_rule(n, fps, 30, 8, 8, k, 3)
            assert pyslowfast_clip(n, fps, 30, 8, 8, k / 3).tolist() == expected
        assert timed_clips(n, fps, 30, "pyslowfast", 8, 8, "test", "uniform", 3).tolist() == [
            pyslowfast_rule(n, fps, 30, 8, 8, k, 3) for k in range(3)]


def test_training_draws_stay_inside_the_rule():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        idx = timed_clips(300, 60.0, 30, "pyslowfast", 8, 8, "train", generator=g)
        assert 0 <= int(idx.min()) and int(idx.max()) <= 299
        span = int(idx[-1] - idx[0])
        assert span in (126, 127)  # 8 · 8 · 60 / 30 = 128 frames covered: linspace(start, start + 127), floored
        idx = timed_clips(300, 60.0, 15, "torchvision", 16, 1, "train", generator=g)
        assert (idx.diff() == 4).all()  # every 4th source frame: 60 → 15 fps


def test_a_clip_covers_the_same_time_at_every_frame_rate():
    """16 frames at 15 fps: about 1.07 s of video whatever the source rate (the point of sampling by time)."""
    for fps in (24.0, 25.0, 30000 / 1001, 30.0, 60.0):
        idx = timed_clips(600, fps, 15, "torchvision", 16, 1, "val")
        assert abs((int(idx[-1]) - int(idx[0])) / fps - 15 / 15) < 1.5 / fps


def test_bad_rule_and_rate():
    with pytest.raises(ConfigError, match="fps_rule=nope"):
        timed_clips(10, 30, 15, "nope", 4, 1, "val")
    with pytest.raises(ConfigError, match="frame rate"):
        resampled_frames(10, None, 15)
    with pytest.raises(ConfigError, match="clip_selection=uniform, not segments"):
        timed_clips(100, 30, 30, "pyslowfast", 8, 8, "test", "segments", 1)


# ------------------------------------------------------------------ the pipeline on real files
def _dataset(root: Path, name: str, source: str, clip: ClipConfig, mode: str = "val", fps: float | None = None,
             num_clips: int = 1) -> VideoDataset:
    spec = DataSpec.from_config({"clip": {"frames": clip.frames, "sample_rate": clip.sample_rate}})
    return VideoDataset([VideoEntry(name, "validation", None, -1, None, fps)],
                        Location(str(root), source, "{video_id}", ".mp4" if source == "video" else ""), mode, clip,
                        ClipTransform.from_spec(spec, (0, 0, 0), (1, 1, 1)), num_clips=num_clips, decode_timeout_s=None)


@pytest.mark.parametrize("rate", [Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(60)])
def test_video_files_are_sampled_at_their_header_rate(rate, tmp_path):
    write_video(tmp_path / "v.mp4", moving_bar_frames(90, 32, 40), fps=rate)
    with av.open(str(tmp_path / "v.mp4")) as container:  # read independently of vidrec
        header = float(container.streams.video[0].average_rate)
    assert header == pytest.approx(float(rate))
    for rule, target in (("torchvision", 15), ("deepmind", 25), ("pyslowfast", 30)):
        ds = _dataset(tmp_path, "v", "video", ClipConfig(frames=4, sample_rate=2, fps=target, fps_rule=rule), "test",
                      num_clips=3)
        got = ds.indices(0, torch.Generator())
        if rule == "pyslowfast":
            expected = [pyslowfast_rule(90, header, target, 4, 2, k, 3) for k in range(3)]
        else:
            table = torchvision_rule(90, header, target)
            m = len(table)
            room = max(m - 7, 0)
            expected = [[table[(math.floor(k * room / 2 + 0.5) + 2 * i) % m] for i in range(4)] for k in range(3)]
        assert got.tolist() == expected, (rule, float(rate))


def test_a_variable_frame_rate_file_uses_its_average_rate(tmp_path):
    """Frames 1/30 s apart, then 1/15 s apart: the authors' decoders use the stream's average rate, so does vidrec."""
    path = tmp_path / "vfr.mp4"
    frames = moving_bar_frames(60, 32, 40)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 40, 32, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 30)
        pts = 0
        for k, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = pts, Fraction(1, 30)
            pts += 1 if k < 30 else 2
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        average = float(container.streams.video[0].average_rate)
    assert 15 < average < 30  # neither of the two local rates
    ds = _dataset(tmp_path, "vfr", "video", ClipConfig(frames=8, sample_rate=1, fps=15, fps_rule="torchvision"))
    table = torchvision_rule(60, average, 15)
    room = max(len(table) - 8, 0)
    assert ds.indices(0, torch.Generator()).tolist() == [table[room // 2 + i] for i in range(8)]


def test_frame_folders_take_the_recorded_rate(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    from PIL import Image

    for k, frame in enumerate(moving_bar_frames(40, 16, 16)):
        Image.fromarray(frame).save(folder / f"image_{k + 1:05d}.jpg")
    clip = ClipConfig(frames=4, sample_rate=1, fps=15, fps_rule="torchvision")
    with pytest.raises(DecodeError, match="no frame rate is recorded"):
        _dataset(tmp_path, "clip", "frames", clip).indices(0, torch.Generator())
    annotated = _dataset(tmp_path, "clip", "frames", clip, fps=30.0)  # the annotation's "fps"
    (folder / "fps").write_text("30.0")  # the extraction's fps file
    from_file = _dataset(tmp_path, "clip", "frames", clip)
    expected = [torchvision_rule(40, 30.0, 15)[8 + i] for i in range(4)]  # 20 resampled, centre clip starts at 8
    assert annotated.indices(0, torch.Generator()).tolist() == expected
    assert from_file.indices(0, torch.Generator()).tolist() == expected


@pytest.mark.parametrize("rate, step", [(30, 2), (60, 4), (15, 1)])
def test_timelines_and_sequence_features_slide_clips_sampled_by_time(rate, step, tmp_path):
    """predict.py timeline=true and extract.py features.mode=sequence stream the video: their clips take the same
    time-based offsets (16 frames at 15 fps: every ``fps / 15``-th source frame)."""
    from torch import nn

    from vidrec.features import protocol_offsets
    from vidrec.inference import InferenceModel

    write_video(tmp_path / "v.mp4", moving_bar_frames(64, 32, 40), fps=rate)
    spec = DataSpec.from_config({"clip": {"frames": 16, "sample_rate": 1, "fps": 15}})
    model = InferenceModel(nn.Identity(), "r2plus1d_tiny", ["a"], spec, "test")
    assert protocol_offsets(model, tmp_path / "v.mp4").tolist() == [step * i for i in range(16)]
    frame_based = InferenceModel(nn.Identity(), "r2plus1d_tiny", ["a"], DataSpec.from_config({"clip": {"frames": 16, "sample_rate": 1}}), "t")
    assert protocol_offsets(frame_based, tmp_path / "v.mp4").tolist() == list(range(16))
