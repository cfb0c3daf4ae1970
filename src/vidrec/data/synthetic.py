"""The embedded dataset: procedurally generated motion videos written once as real MP4 files.

Eight classes come in pairs that are the same motion played backwards (left/right, up/down, clockwise/
anticlockwise, grow/shrink). Each video shows a textured rectangle on a textured background with random
size, position, speed and colours, so no single frame tells the class: a model must see motion. Generation
is deterministic from the seed and written under ``<data_dir>/synthetic-<signature>/`` (videos in
``videos/<label>/<video_id>.mp4`` and ``annotation.json``), atomically: a folder is renamed into place only
when complete.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from vidrec.data.annotations import make_entry, write_annotation
from vidrec.data.spec import SyntheticSpec

log = logging.getLogger(__name__)

CLASSES = (
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "rotate_clockwise",
    "rotate_anticlockwise",
    "grow",
    "shrink",
)
#: Classes a horizontal flip turns into each other (used as the flip label map).
FLIP_PAIRS = {"move_left": "move_right", "move_right": "move_left",
              "rotate_clockwise": "rotate_anticlockwise", "rotate_anticlockwise": "rotate_clockwise"}


def _smooth_texture(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """A random colour texture: a coarse grid of random colours upsampled bilinearly, ``(h, w, 3)`` float."""
    grid = rng.uniform(0, 255, size=(cells + 1, cells + 1, 3))
    ys = np.linspace(0, cells, h)
    xs = np.linspace(0, cells, w)
    y0 = np.minimum(ys.astype(int), cells - 1)
    x0 = np.minimum(xs.astype(int), cells - 1)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _trajectory(label: str, rng: np.random.Generator, spec: SyntheticSpec, size: tuple[float, float]):
    """Per-frame centre (x, y), angle (radians) and scale of the object for one video."""
    t = np.arange(spec.frames, dtype=np.float64)
    n = spec.frames - 1
    ow, oh = size
    margin = max(ow, oh) / 2 + 2
    cx = np.full(spec.frames, rng.uniform(margin, spec.width - margin))
    cy = np.full(spec.frames, rng.uniform(margin, spec.height - margin))
    angle = np.full(spec.frames, rng.uniform(0, 2 * math.pi))
    scale = np.ones(spec.frames)
    if label in ("move_left", "move_right", "move_up", "move_down"):
        horizontal = label in ("move_left", "move_right")
        extent = spec.width if horizontal else spec.height
        travel = rng.uniform(0.35, 0.6) * extent
        start = rng.uniform(ow / 2 - 4, extent - travel - ow / 2 + 4)
        path = start + travel * t / n
        if label in ("move_left", "move_up"):
            path = path[::-1]
        if horizontal:
            cx = path
        else:
            cy = path
    elif label.startswith("rotate"):
        speed = rng.uniform(0.07, 0.16) * (1 if label == "rotate_clockwise" else -1)
        angle = angle + speed * t  # image y points down: a growing angle turns clockwise on screen
    else:
        small, big = rng.uniform(0.45, 0.6), rng.uniform(1.3, 1.6)
        scale = small * (big / small) ** (t / n)
        if label == "shrink":
            scale = scale[::-1]
    return cx, cy, angle, scale


def render_video(label: str, rng: np.random.Generator, spec: SyntheticSpec) -> np.ndarray:
    """Render one video of class ``label`` as uint8 ``(T, H, W, 3)``."""
    background = _smooth_texture(rng, spec.height, spec.width, int(rng.integers(2, 6)))
    ow, oh = rng.uniform(18, 28), rng.uniform(9, 15)
    texture = _smooth_texture(rng, 32, 32, int(rng.integers(2, 4)))
    # keep the object distinct from the background: push its colours away from the background's mean
    texture = np.clip(texture + np.sign(texture - background.mean()) * 60, 0, 255)
    cx, cy, angle, scale = _trajectory(label, rng, spec, (ow, oh))
    ys, xs = np.mgrid[0 : spec.height, 0 : spec.width].astype(np.float64)
    out = np.empty((spec.frames, spec.height, spec.width, 3), dtype=np.uint8)
    for k in range(spec.frames):
        dx, dy = xs - cx[k], ys - cy[k]
        c, s = math.cos(angle[k]), math.sin(angle[k])
        u = (c * dx + s * dy) / scale[k]
        v = (-s * dx + c * dy) / scale[k]
        inside = (np.abs(u) < ow / 2) & (np.abs(v) < oh / 2)
        tu = np.clip(((u / ow + 0.5) * 31).astype(int), 0, 31)
        tv = np.clip(((v / oh + 0.5) * 31).astype(int), 0, 31)
        frame = background.copy()
        frame[inside] = texture[tv[inside], tu[inside]]
        frame += rng.normal(0, 4, size=frame.shape)  # sensor noise, fresh every frame
        out[k] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


_CODEC_BY_EXT = {".avi": "mpeg4", ".webm": "libvpx-vp9", ".mkv": "libx264", ".mp4": "libx264", ".mov": "libx264"}


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 16, codec: str | None = None, crf: int = 18,
                options: dict[str, str] | None = None) -> None:
    """Encode uint8 ``(T, H, W, 3)`` frames with PyAV; the codec follows the extension unless given
    (H.264 for .mp4, MPEG-4 part 2 for .avi, VP9 for .webm; mpeg4 when x264 is unavailable).
    ``options`` are extra FFmpeg codec options, e.g. ``{"g": "60"}`` for a keyframe every 60 frames."""
    import av

    codec = codec or _CODEC_BY_EXT.get(Path(path).suffix.lower(), "libx264")
    if codec not in av.codecs_available:
        codec = "mpeg4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            # no macroblock tree: with it, x264's AVX-512 code gave different frames from run to run (Xeon with
            # AMX, PyAV 18.1), and the embedded dataset must be the same files wherever it is generated
            stream.options = {"crf": str(crf), "preset": "veryfast", "x264-params": "mbtree=0"}
        elif codec == "mpeg4":
            stream.options = {"qscale": "3"}
        else:  # libvpx / libvpx-vp9 refuse to open without a rate target
            stream.bit_rate = 2_000_000
        if options:
            stream.options = {**stream.options, **options}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _generate(folder: Path, spec: SyntheticSpec) -> None:
    rng = np.random.default_rng(spec.seed)
    database: dict[str, dict] = {}
    counts = (("training", spec.per_class_train), ("validation", spec.per_class_val), ("testing", spec.per_class_test))
    for subset, per_class in counts:
        for label in CLASSES:
            (folder / "videos" / label).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                video_id = f"{label}_{subset[:3]}_{i:03d}"
                write_video(folder / "videos" / label / f"{video_id}.mp4", render_video(label, rng, spec), spec.fps)
                database[video_id] = make_entry(subset, label, spec.frames, spec.fps)
    write_annotation(folder / "annotation.json", list(CLASSES), database)


def ensure_synthetic(data_dir: str | os.PathLike, spec: SyntheticSpec | None = None) -> Path:
    """Return the synthetic dataset folder under ``data_dir``, generating it first when absent.

    Safe against concurrent callers and interruptions: it is built in a temporary folder and renamed into
    place; a loser of the race discards its copy.
    """
    spec = spec or SyntheticSpec()
    final = Path(data_dir) / f"synthetic-{spec.signature()}"
    if (final / "annotation.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=final.parent))
    log.info("generating the synthetic dataset in %s (one time)", final)
    try:
        _generate(tmp, spec)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished first
            if not (final / "annotation.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
