"""Re-encoding a video tree for training: short side, keyframe every ``gop`` frames, no B-frames, fast decoding.

``SRC/<any/path>/<stem>.<ext>`` → ``DST/<any/path>/<stem>.mp4`` (H.264 by PyAV's bundled libx264, audio
dropped). Frame ``i`` of the output is frame ``i`` of a sequential decode of the source, for every ``i``: each
decoded frame is encoded once, at ``pts = i`` in the source's average frame rate (a VFR source becomes CFR; its
frame numbering, which is what vidrec samples by, is kept). Before a file is written its output is decoded
again and checked against the source decode: the same frame count, and per frame a 16×16 RGB thumbnail within
:data:`SIGNATURE_TOLERANCE`; a mismatch is a failure and the file is left out. The file is then written
atomically (a hidden temporary file in its DST folder, renamed into place), so an existing output is always
complete and a killed run resumes. ``DST/reencode.json`` records the settings; a rerun with other settings
into the same DST is refused. See docs/reencoding.md.

Test hook: ``VIDREC_PREPROCESS_FRAME_DELAY=<seconds>`` sleeps after each encoded frame, as in frame extraction.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter

from vidrec.data.layout import VIDEO_EXTENSIONS
from vidrec.errors import ConfigError, DataError, DecodeError
from vidrec.files import atomic_open, atomic_write_json
from vidrec.preprocess.frames import TRUNCATED_FRACTION, Extracted, Job
from vidrec.preprocess.layout import require_dir

SETTINGS_FILE = "reencode.json"
#: Side of the per-frame thumbnail compared between source and output.
SIGNATURE_SIZE = 16
#: Largest mean absolute difference (0-255) between a source frame's thumbnail and its output's. The worst
#: lossy error on the real clips was 1.1 at CRF 23 and 3.9 at 35 (benchmarks/reencode.py --crf N prints it); a
#: dropped, duplicated or reordered frame is caught where the frames concerned differ by more than this.
SIGNATURE_TOLERANCE = 4.0
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
_UMASK = os.umask(0o022)  # reading the umask means setting it: restore it at once
os.umask(_UMASK)


@dataclass(frozen=True)
class Encoding:
    """How videos are re-encoded: ``short_side`` in pixels (0 keeps the size; never upscales), a keyframe
    every ``gop`` frames, x264 ``crf`` and ``preset``; ``threads`` per encoder (0: x264's default)."""

    short_side: int = 160
    gop: int = 16
    crf: int = 23
    preset: str = "medium"
    threads: int = 0

    def x264_options(self) -> dict[str, str]:
        """libx264 options: fixed GOP (no scene-cut keyframes), no B-frames, ``tune=fastdecode``."""
        return {"crf": str(self.crf), "preset": self.preset, "tune": "fastdecode", "g": str(self.gop),
                "keyint_min": str(self.gop), "sc_threshold": "0", "bf": "0",
                **({"threads": str(self.threads)} if self.threads else {})}

    def settings(self) -> dict[str, object]:
        """What ``reencode.json`` records (everything that changes the output)."""
        return {"codec": "libx264", "container": "mp4", "pix_fmt": "yuv420p", "tune": "fastdecode", "bframes": 0,
                **{k: v for k, v in asdict(self).items() if k != "threads"}}


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side ``short_side`` (aspect kept), both even; never larger than the
    source (``short_side <= 0`` or a smaller source keeps its size, made even)."""
    short = min(width, height)
    if short_side <= 0 or short_side >= short:
        return max(2, width - width % 2), max(2, height - height % 2)
    long = 2 * max(1, round(max(width, height) * short_side / short / 2))
    return (long, short_side) if width >= height else (short_side, long)


def tree_jobs(src: Path, dst: Path) -> list[Job]:
    """Jobs for every video file under ``src`` (hidden names and ``dst`` itself left out) → ``dst/<rel>.mp4``."""
    require_dir(src, "the videos (any tree of folders)")
    src, dst = src.resolve(), dst.resolve()
    jobs = []
    for folder, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and Path(folder, d) != dst)
        for name in sorted(files):
            path = Path(folder, name)
            if not name.startswith(".") and path.suffix.lower() in VIDEO_EXTENSIONS:
                jobs.append(Job(path, (dst / path.relative_to(src)).with_suffix(".mp4")))
    if not jobs:
        raise DataError(f"{src}: no video files ({', '.join(VIDEO_EXTENSIONS)}) found; pass the folder holding them")
    return jobs


def _signature(frame: av.VideoFrame, reformatter: VideoReformatter) -> np.ndarray:
    return reformatter.reformat(frame, format="rgb24", width=SIGNATURE_SIZE, height=SIGNATURE_SIZE,
                                interpolation="AREA").to_ndarray()


def _frame_rate(stream: av.video.stream.VideoStream, source: Path) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate
    if not rate or rate <= 0:
        raise DecodeError(f"{source}: the video stream has no frame rate; remux it with one (e.g. 30 fps)")
    return Fraction(rate).limit_denominator(1_000_000)


def encode(source: Path, enc: Encoding) -> tuple[bytes, np.ndarray]:
    """Decode ``source`` sequentially and encode every frame; the MP4 bytes and the source frames' thumbnails."""
    delay = float(os.environ.get("VIDREC_PREPROCESS_FRAME_DELAY") or 0)
    buffer = io.BytesIO()
    signatures = []
    with av.open(str(source), metadata_errors="ignore") as container:
        if not container.streams.video:
            raise DecodeError(f"{source}: the file has no video stream")
        stream = container.streams.video[0]
        rate = _frame_rate(stream, source)
        size = output_size(stream.width, stream.height, enc.short_side)
        scaler, thumbs = VideoReformatter(), VideoReformatter()
        with av.open(buffer, "w", format="mp4") as out:
            ostream = out.add_stream("libx264", rate=rate)
            ostream.width, ostream.height, ostream.pix_fmt = *size, "yuv420p"
            ostream.options = enc.x264_options()
            for index, frame in enumerate(container.decode(stream)):
                signatures.append(_signature(frame, thumbs))
                # bicubic: ffmpeg's default scaler, as frame extraction uses
                picture = scaler.reformat(frame, format="yuv420p", width=size[0], height=size[1], interpolation="BICUBIC")
                picture.pts, picture.time_base = index, 1 / rate
                picture.pict_type = PictureType.NONE  # else x264 forces a keyframe where the source has one
                out.mux(ostream.encode(picture))
                if delay:
                    time.sleep(delay)
            out.mux(ostream.encode())
        claimed = stream.frames
    if not signatures:
        raise DecodeError(f"{source}: no decodable video frames")
    if len(signatures) < TRUNCATED_FRACTION * claimed - 2:
        raise DecodeError(f"{source}: only {len(signatures)} of the {claimed} frames its header announces decode; "
                          "the file looks truncated: download it again")
    return buffer.getvalue(), np.stack(signatures)


def check(data: bytes, signatures: np.ndarray, source: Path) -> float:
    """Decode the encoded ``data`` and compare it with the source thumbnails; return the largest difference.
    A :class:`DecodeError` says how they differ (frame count, or the first frame beyond :data:`SIGNATURE_TOLERANCE`)."""
    thumbs = VideoReformatter()
    with av.open(io.BytesIO(data), format="mp4") as container:
        got = [_signature(frame, thumbs) for frame in container.decode(video=0)]
    if len(got) != len(signatures):
        raise DecodeError(f"{source}: the re-encoded file has {len(got)} frames, the source decodes {len(signatures)}; "
                          "not written (remux or re-download the source)")
    distance = np.abs(np.stack(got).astype(np.float32) - signatures).mean(axis=(1, 2, 3))
    bad = np.flatnonzero(distance > SIGNATURE_TOLERANCE)
    if bad.size:
        raise DecodeError(f"{source}: re-encoded frame {bad[0]} differs from the source's (thumbnail difference "
                          f"{distance[bad[0]]:.1f} > {SIGNATURE_TOLERANCE}, {bad.size} frames in all); not written "
                          "(above --crf 30 the encoding alone can differ this much: use a lower --crf)")
    return float(distance.max())


def reencode(job: Job, enc: Encoding) -> Extracted:
    """Re-encode ``job.source`` into ``job.dest`` (checked, then written atomically); return its frame count."""
    for stale in job.dest.parent.glob(f".{job.dest.name}.*.tmp"):  # left by a killed run
        stale.unlink(missing_ok=True)
    if job.source.stat().st_size == 0:
        raise DecodeError(f"{job.source}: the file is empty (0 bytes); download it again or delete it")
    data, signatures = encode(job.source, enc)
    check(data, signatures, job.source)
    with atomic_open(job.dest, "wb") as handle:
        handle.write(data)
    os.chmod(job.dest, 0o666 & ~_UMASK)  # the temporary file was private (0600)
    return Extracted(len(signatures))


def check_settings(dst: Path, enc: Encoding) -> None:
    """Refuse to mix two encodings in one DST; record the settings for a fresh one."""
    import json

    path = dst / SETTINGS_FILE
    if path.is_file():
        try:
            before = json.loads(path.read_text()).get("settings")
        except ValueError:
            before = None
        if before != enc.settings():
            raise ConfigError(f"{path}: {dst} was re-encoded with other settings ({before}); pass the same options "
                              "to resume it, or another DST")
    else:
        atomic_write_json(path, {"settings": enc.settings(), "pyav": av.__version__})
