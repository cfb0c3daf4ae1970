"""predict.py timeline=true on a generated 60 s video (two motions, one per half) and on real clips: the CSV, the
plot and the labelled MP4; the frames are streamed (the buffer never holds more than one window)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch import nn

from conftest import one_error_line, run_entry
from vidrec.data.decoding import count_frames
from vidrec.data.spec import DataSpec, SyntheticSpec
from vidrec.data.stream import SlidingClips, clip_offsets
from vidrec.data.synthetic import render_video, write_video
from vidrec.inference import InferenceModel, load_inference_model
from vidrec.timeline import timeline_outputs, video_timeline

FPS = 16
HALF = 40  # 12-frame clips per half: 2 × 40 × 12 = 960 frames = 60 s


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """60 s at 64×80: the first half an object moving left, the second an object growing."""
    spec, rng = SyntheticSpec(frames=12), np.random.default_rng(0)
    frames = np.concatenate([render_video(label, rng, spec) for label in ("move_left",) * HALF + ("grow",) * HALF])
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    write_video(path, frames, fps=FPS)
    return path


def test_timeline_of_a_long_video(trained, long_video, tmp_path):
    run, _ = trained
    out = tmp_path / "tl"
    proc = run_entry("predict.py", f"video={long_video}", f"ckpt_path={run}", "timeline=true", "timeline.video=true",
                     "timeline.stride=4", f"timeline.out_dir={out}", "json=true")
    result = json.loads(proc.stdout)
    n = count_frames(long_video)
    span = (4 - 1) * 2 + 1  # the checkpoint's 4-frame clips at sample rate 2
    assert n == 960 and result["window_frames"] == span and result["windows"] == len(range(0, n - span + 1, 4))
    assert result["peak_frames_held"] == span  # streamed: never more than one window of frames
    with open(out / "timeline.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == result["windows"]
    starts = [float(r["start_s"]) for r in rows]
    assert starts[0] == 0 and starts == sorted(starts) and float(rows[-1]["end_s"]) == pytest.approx(60, abs=0.5)
    scores = np.array([[float(r[f"score{k}"]) for k in range(1, 6)] for r in rows])
    assert (np.diff(scores, axis=1) <= 0).all() and (scores.sum(1) <= 1 + 1e-5).all()
    with Image.open(out / "timeline.png") as image:
        assert image.width > 600 and image.height > 250
    video = out / "timeline.mp4"
    assert count_frames(video) == n
    import av

    with av.open(str(video)) as c:
        assert c.streams.video[0].codec_context.name == "h264"


class Brightness(nn.Module):
    """A "network" that tells dark clips from bright ones (its classifier ``fc`` reads the mean pixel)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[-20.0], [20.0]]))
            self.fc.bias.copy_(torch.tensor([10.0, -10.0]))

    def forward(self, x):
        return self.fc(x.mean(dim=(1, 2, 3, 4))[:, None])


def test_the_timeline_switches_where_the_video_does(tmp_path):
    """60 s: 30 s dark then 30 s bright; the timeline's top-1 changes from dark to bright at 30 s (± one window)."""
    rng = np.random.default_rng(0)
    frames = np.concatenate([np.clip(rng.normal(level, 10, (30 * FPS, 32, 40, 3)), 0, 255).astype(np.uint8)
                             for level in (40, 215)])
    video = tmp_path / "dark_bright.mp4"
    write_video(video, frames, fps=FPS)
    spec = DataSpec.from_config({"clip": {"frames": 4, "sample_rate": 4}, "mean": [0, 0, 0], "std": [1, 1, 1],
                                 "test": {"scale": 32, "crop_size": 32, "num_clips": 1, "num_crops": 1}})
    model = InferenceModel(Brightness(), "r2plus1d_tiny", ["dark", "bright"], spec, "brightness")
    out = tmp_path / "out"
    result = timeline_outputs(model, video, out, None, 8, "cpu")
    assert [s["label"] for s in result["segments"]] == ["dark", "bright"]
    window_s = result["window_frames"] / FPS
    assert result["segments"][1]["start_s"] == pytest.approx(30, abs=window_s)
    assert result["segments"][1]["end_s"] == pytest.approx(60, abs=window_s)
    assert result["peak_frames_held"] == 13 and result["num_frames"] == 60 * FPS


def test_band_segments_and_labelled_video_agree_at_29_97_fps(tmp_path):
    """The top-1 band, the printed segments and the labelled MP4 use the same cells (around window centres, tiling
    the video without overlap); the MP4 keeps the source's 30000/1001 fps."""
    from fractions import Fraction

    import av

    from vidrec.timeline import segments, write_overlay_video

    rate = Fraction(30000, 1001)
    rng = np.random.default_rng(0)
    frames = np.concatenate([np.clip(rng.normal(level, 10, (90, 32, 40, 3)), 0, 255).astype(np.uint8)
                             for level in (40, 215)])
    video = tmp_path / "ntsc.mp4"
    write_video(video, frames, fps=rate)
    spec = DataSpec.from_config({"clip": {"frames": 4, "sample_rate": 4}, "mean": [0, 0, 0], "std": [1, 1, 1],
                                 "test": {"scale": 32, "crop_size": 32, "num_clips": 1, "num_crops": 1}})
    model = InferenceModel(Brightness(), "r2plus1d_tiny", ["dark", "bright"], spec, "brightness")
    tl = video_timeline(model, video, None, 8, "cpu")
    assert tl.fps == pytest.approx(float(rate))
    runs = segments(tl)
    assert runs[0]["start_s"] == 0 and runs[-1]["end_s"] == pytest.approx(180 / float(rate), abs=1e-3)
    assert all(a["end_s"] == b["start_s"] for a, b in zip(runs, runs[1:]))  # no overlap, no gap
    cells = [tl.cell(i) for i in range(len(tl.starts))]
    assert all(c0[1] == pytest.approx(c1[0]) for c0, c1 in zip(cells, cells[1:]))
    for i in range(len(tl.starts)):  # every window's centre lies in its own cell
        assert cells[i][0] <= tl.centre(i) <= cells[i][1]
    switch = next(i for i, c in enumerate(tl.probs.argmax(1).tolist()) if c == 1)
    assert runs[1]["start_s"] == pytest.approx(cells[switch][0], abs=1e-3)
    out = tmp_path / "timeline.mp4"
    write_overlay_video(tl, video, out)
    with av.open(str(out)) as container:
        assert container.streams.video[0].average_rate == rate
        drawn = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(drawn) == 180
    for index in range(180):  # the MP4 labels each frame with the window whose cell (the band's span) holds it
        t = (index + 0.5) / float(rate)
        a, b = cells[tl.window_at(t)]
        assert a <= t <= b


def test_the_buffer_holds_one_window_however_long_the_stream():
    made = []

    def frames():
        for i in range(5000):
            frame = np.full((4, 4, 3), i % 256, dtype=np.uint8)
            made.append(i)
            yield frame

    sampler = SlidingClips(clip_offsets(8, 2), stride=5)
    peak_held, count = 0, 0
    for start, clip in sampler(frames()):
        peak_held = max(peak_held, sampler.held)
        assert len(made) == start + 15  # frames are pulled only as far as the window needs
        assert clip[:, 0, 0, 0].tolist() == [(start + 2 * k) % 256 for k in range(8)]
        count += 1
    assert peak_held == sampler.peak == 15 and count == len(range(0, 5000 - 15 + 1, 5))


def test_a_short_stream_gives_one_looped_clip():
    sampler = SlidingClips(torch.tensor([0, 2, 4, 6]), stride=2)
    clips = list(sampler(np.full((1, 1, 3), k, dtype=np.uint8) for k in range(3)))
    assert len(clips) == 1 and clips[0][0] == 0 and clips[0][1][:, 0, 0, 0].tolist() == [0, 2, 1, 0]


def test_timeline_on_real_clips(trained, shared_clips, tmp_path):
    run, _ = trained
    model = load_inference_model(OmegaConf.create({"ckpt_path": str(run)}))
    for clip in sorted(shared_clips.glob("*.avi"))[:2]:
        tl = video_timeline(model, clip, window=16, stride=8)
        n = count_frames(clip)
        assert tl.num_frames == n and tl.starts == list(range(0, n - 16 + 1, 8)) and tl.peak_frames_held == 16
        assert torch.allclose(tl.probs.sum(1), torch.ones(len(tl.starts)), atol=1e-5)
    proc = run_entry("predict.py", f"video={clip}", f"ckpt_path={run}", "timeline=true", f"timeline.out_dir={tmp_path}")
    assert "windows of 7 frames" in proc.stdout and (tmp_path / "timeline.png").is_file()


def test_timeline_of_a_missing_video_is_one_error_line(trained, tmp_path):
    run, _ = trained
    proc = run_entry("predict.py", f"video={tmp_path / 'nope.mp4'}", f"ckpt_path={run}", "timeline=true", check=False)
    assert "nope.mp4: no such video file" in one_error_line(proc)
