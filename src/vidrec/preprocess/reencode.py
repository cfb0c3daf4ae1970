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

import argparse
import io
import os
import time
from collections.abc import Sequence
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
from vidrec.preprocess.cli import FAILURES_FILE, _usable_cpus
from vidrec.preprocess.frames import TRUNCATED_FRACTION, Extracted, Job
from vidrec.preprocess.layout import require_dir
from vidrec.preprocess.runner import run_jobs, write_failures

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


def _settings_guard(dst: Path, enc: Encoding) -> None:
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


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def main(argv: Sequence[str] | None = None) -> int:
    """``reencode_videos.py SRC DST``: re-encode a video tree for training (see the module docstring)."""
    defaults = Encoding()
    parser = argparse.ArgumentParser(description="Re-encode a video tree for fast training reads (H.264, fixed "
                                     "GOP, no B-frames, frame counts kept). See docs/reencoding.md.")
    parser.add_argument("src", type=Path, help="folder of videos (any tree: class/video.avi, flat, ...)")
    parser.add_argument("dst", type=Path, help="output folder: same relative paths and stems, extension .mp4")
    parser.add_argument("--short-side", type=int, default=defaults.short_side,
                        help=f"short side in pixels, even; 0 keeps the size; never upscales (default {defaults.short_side})")
    parser.add_argument("--gop", type=int, default=defaults.gop, help=f"keyframe interval in frames (default {defaults.gop})")
    parser.add_argument("--crf", type=int, default=defaults.crf, help=f"x264 quality, 0-51, lower is better (default {defaults.crf})")
    parser.add_argument("--preset", default=defaults.preset, choices=X264_PRESETS,
                        help=f"x264 speed/size trade-off (default {defaults.preset})")
    parser.add_argument("--workers", type=int, default=_usable_cpus(), help="parallel worker processes (default: all CPUs)")
    parser.add_argument("--strict", action="store_true", help="stop at the first video that fails")
    args = parser.parse_args(argv)
    if args.short_side < 0 or args.short_side % 2 or args.gop < 1 or not 0 <= args.crf <= 51 or args.workers < 1:
        raise ConfigError("use an even --short-side >= 0, --gop >= 1, --crf in 0-51 and --workers >= 1")
    enc = Encoding(args.short_side, args.gop, args.crf, args.preset)
    jobs = tree_jobs(args.src, args.dst)
    args.dst.mkdir(parents=True, exist_ok=True)
    _settings_guard(args.dst, enc)
    print(f"{len(jobs)} videos from {args.src} → {args.dst} (short side {enc.short_side or 'kept'}, gop {enc.gop}, "
          f"crf {enc.crf}, preset {enc.preset}, {args.workers} workers)", flush=True)
    report = run_jobs(jobs, enc, workers=args.workers, strict=args.strict, work=reencode, done=Path.is_file)
    failures_path = args.dst / FAILURES_FILE
    write_failures(failures_path, report.failures)
    done = [j for j in jobs if j.dest.is_file()]
    src_bytes, dst_bytes = sum(j.source.stat().st_size for j in done), sum(j.dest.stat().st_size for j in done)
    print(f"re-encoded {report.extracted} videos ({report.frames} frames) in {report.seconds:.1f} s, "
          f"{report.skipped} already done, {len(report.failures)} failed")
    print(f"size of the {len(done)} videos in {args.dst}: {_mb(dst_bytes)}, sources {_mb(src_bytes)} "
          f"({dst_bytes / max(src_bytes, 1):.0%})")
    if report.failures:
        print(f"failed videos and reasons: {failures_path}; they are not in {args.dst}")
    return 0
