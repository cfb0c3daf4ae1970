"""Long videos: the model slid over the whole video (a window every ``stride`` frames, decoded as a stream so
memory is one window's frames), written as timeline.csv, a plot (timeline.png) and optionally an MP4 copy with
the current top-3 labels drawn on the frames."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from vidrec.data.stream import SlidingClips, iter_frames, video_fps
from vidrec.errors import ConfigError
from vidrec.features import protocol_offsets, slide
from vidrec.files import atomic_open, atomic_write_text
from vidrec.inference import InferenceModel

log = logging.getLogger(__name__)


@dataclass
class Timeline:
    """Class probabilities of each window: ``probs[i]`` for frames ``starts[i] .. starts[i] + window - 1``."""

    labels: list[str]
    starts: list[int]
    window: int
    fps: float
    probs: torch.Tensor  # (windows, classes)
    num_frames: int
    peak_frames_held: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def top(self, i: int, k: int) -> list[tuple[str, float]]:
        p, idx = self.probs[i].topk(min(k, self.probs.shape[1]))
        return [(self.labels[int(j)], float(q)) for q, j in zip(p, idx)]

    def times(self, i: int) -> tuple[float, float]:
        """Start and end (s) of the frames window ``i`` covers (consecutive windows overlap)."""
        start = self.starts[i]
        return start / self.fps, min(start + self.window, self.num_frames) / self.fps

    def centre(self, i: int) -> float:
        """The time (s) window ``i`` stands for: its centre, where the plot's lines put its score."""
        return (self.starts[i] + min(self.window, self.num_frames - self.starts[i]) / 2) / self.fps

    def cell(self, i: int) -> tuple[float, float]:
        """The stretch of time (s) window ``i`` is the nearest window for: from the midpoint with the previous
        window's centre to the midpoint with the next one's (the first from 0, the last to the video's end). The
        cells tile the video without overlap; the top-1 band, the printed segments and the labelled MP4 use them."""
        last = len(self.starts) - 1
        t0 = 0.0 if i == 0 else (self.centre(i - 1) + self.centre(i)) / 2
        t1 = self.num_frames / self.fps if i == last else (self.centre(i) + self.centre(i + 1)) / 2
        return t0, t1

    def window_at(self, t: float) -> int:
        """The window whose cell holds time ``t`` (s): the one with the nearest centre."""
        return int(np.abs(np.array([self.centre(i) for i in range(len(self.starts))]) - t).argmin())


def video_timeline(model: InferenceModel, path: str | Path, window: int | None = None, stride: int | None = None,
                   device: str = "cpu") -> Timeline:
    """Slide ``model`` over ``path``: a clip (the protocol's frames, centre crop) per window of ``window`` frames
    (default: the clip's span) every ``stride`` frames (default: half a window); softmax per window."""
    offsets = protocol_offsets(model, path, window=window)
    span = int(offsets.max()) + 1
    stride = int(stride or max(1, span // 2))
    if stride <= 0:
        raise ConfigError(f"timeline.stride must be positive, got {stride}")
    sampler = SlidingClips(offsets, stride)
    starts, _, logits = slide(model, path, sampler, device=device)
    fps = video_fps(path) or 25.0
    return Timeline(model.labels, starts, span, fps, logits.softmax(-1), sampler.frames_seen, sampler.peak)


def write_csv(timeline: Timeline, path: Path, k: int = 5) -> None:
    """One row per window: start/end time (s), start/end frame, then label/score of the top ``k``."""
    k = min(k, len(timeline.labels))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["start_s", "end_s", "start_frame", "end_frame"]
                    + [f"{name}{r}" for r in range(1, k + 1) for name in ("label", "score")])
    for i, start in enumerate(timeline.starts):
        t0, t1 = timeline.times(i)
        row: list[Any] = [f"{t0:.3f}", f"{t1:.3f}", start, min(start + timeline.window, timeline.num_frames) - 1]
        for label, score in timeline.top(i, k):
            row += [label, f"{score:.6f}"]
        writer.writerow(row)
    atomic_write_text(path, buf.getvalue())


def top_classes(timeline: Timeline, n: int = 5) -> list[int]:
    """The classes to plot: those ranked first in some window, then by peak score, at most ``n``."""
    winners = timeline.probs.argmax(1)
    peak = timeline.probs.max(0).values
    order = sorted(range(len(timeline.labels)), key=lambda c: (-(winners == c).sum().item(), -peak[c].item()))
    return order[:n]


def plot(timeline: Timeline, path: Path, title: str, n: int = 5) -> None:
    """Score over time of the top classes, with a band of the top-1 class per window beneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = top_classes(timeline, n)
    mids = [timeline.centre(i) for i in range(len(timeline.starts))]
    fig, (ax, band) = plt.subplots(2, 1, figsize=(11, 4.6), sharex=True, gridspec_kw={"height_ratios": [5, 1]})
    colours = plt.get_cmap("tab10")
    for j, c in enumerate(classes):
        ax.plot(mids, timeline.probs[:, c].numpy(), color=colours(j), lw=2, label=timeline.labels[c])
    ax.set_ylim(0, 1)
    ax.set_ylabel("score (softmax)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, title="top classes")
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    winners = timeline.probs.argmax(1).tolist()
    colour_of = {c: colours(j) for j, c in enumerate(classes)}
    for i, c in enumerate(winners):
        t0, t1 = timeline.cell(i)
        band.axvspan(t0, t1, color=colour_of.get(c, (0.8, 0.8, 0.8)), lw=0)
    band.set_yticks([])
    band.set_ylabel("top-1", rotation=0, ha="right", va="center")
    band.set_xlabel("time (s)")
    band.set_xlim(0, max(timeline.num_frames / timeline.fps, mids[-1]))
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def write_overlay_video(timeline: Timeline, source: str | Path, path: Path, k: int = 3) -> None:
    """An H.264 MP4 copy of ``source`` with the top-``k`` of the window around each frame drawn on it (a second
    streamed decode; PyAV's libx264, no ffmpeg binary)."""
    from PIL import Image, ImageDraw

    if not timeline.starts:
        raise ConfigError(f"{source}: no windows to draw")
    tmp = path.with_name(f".{path.name}.partial.mp4")
    font = None
    try:
        with av.open(str(tmp), "w") as out:
            stream = None
            for i, frame in enumerate(iter_frames(source)):
                h, w = frame.shape[:2]
                if stream is None:
                    stream = out.add_stream("libx264", rate=Fraction(timeline.fps).limit_denominator(100_000))
                    stream.width, stream.height, stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
                    stream.options = {"crf": "23", "preset": "veryfast"}
                    font = _font(max(10, h // 18))
                j = timeline.window_at((i + 0.5) / timeline.fps)  # the window whose cell holds the frame
                image = Image.fromarray(frame[: stream.height, : stream.width])
                draw = ImageDraw.Draw(image)
                lines = [f"{label} {score:.2f}" for label, score in timeline.top(j, k)]
                pad, step = max(3, h // 60), max(12, h // 16)
                draw.rectangle([0, 0, max(draw.textlength(t, font=font) for t in lines) + 2 * pad, step * len(lines) + pad],
                               fill=(0, 0, 0))
                for r, text in enumerate(lines):
                    draw.text((pad, pad + r * step), text, fill=(255, 255, 0) if r == 0 else (255, 255, 255), font=font)
                for packet in stream.encode(av.VideoFrame.from_image(image)):
                    out.mux(packet)
            if stream is not None:
                for packet in stream.encode():
                    out.mux(packet)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def timeline_outputs(model: InferenceModel, video: str | Path, out_dir: Path, window: int | None, stride: int | None,
                     device: str, topk: int = 5, draw_video: bool = False) -> dict[str, Any]:
    """The timeline of ``video`` and its files in ``out_dir``; returns what predict.py reports."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tl = video_timeline(model, video, window, stride, device)
    write_csv(tl, out_dir / "timeline.csv", topk)
    plot(tl, out_dir / "timeline.png", f"{Path(video).name}: {model.name} from {Path(model.source).name}, "
         f"{tl.window}-frame windows every {tl.starts[1] - tl.starts[0] if len(tl.starts) > 1 else tl.window} frames")
    files = {"csv": str(out_dir / "timeline.csv"), "png": str(out_dir / "timeline.png")}
    if draw_video:
        write_overlay_video(tl, video, out_dir / "timeline.mp4")
        files["mp4"] = str(out_dir / "timeline.mp4")
    return {"video": str(video), "windows": len(tl.starts), "window_frames": tl.window, "fps": tl.fps,
            "num_frames": tl.num_frames, "peak_frames_held": tl.peak_frames_held, "files": files,
            "segments": segments(tl)}


def segments(timeline: Timeline) -> list[dict[str, Any]]:
    """Runs of consecutive windows with the same top-1 class: label, start and end time (s) of their cells
    (:meth:`Timeline.cell`), so consecutive segments meet without overlapping."""
    runs: list[dict[str, Any]] = []
    for i, c in enumerate(timeline.probs.argmax(1).tolist()):
        t0, t1 = timeline.cell(i)
        if runs and runs[-1]["label"] == timeline.labels[c]:
            runs[-1]["end_s"] = round(t1, 3)
        else:
            runs.append({"label": timeline.labels[c], "start_s": round(t0, 3), "end_s": round(t1, 3)})
    return runs
