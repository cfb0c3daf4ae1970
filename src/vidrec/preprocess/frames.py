"""The frame extraction engine shared by every dataset: video file or JPEG folder → ``image_00001.jpg``...

A :class:`Job` names a source (video file, or folder of numbered JPEGs as Something-Something V1 ships) and the
destination frame folder. :func:`extract` writes the frames into a hidden ``.<name>.partial`` folder beside
the destination, writes ``n_frames`` (the count that really decoded) and renames the folder into place, so a
destination folder that exists is always complete: a killed run leaves at most a partial folder, which the
next run removes and redoes. :mod:`vidrec.preprocess.runner` runs many jobs.

Test hook: ``VIDREC_PREPROCESS_FRAME_DELAY=<seconds>`` sleeps after each written frame (to interrupt a run
deterministically in tests).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.video.reformatter import VideoReformatter
from PIL import Image

from vidrec.data.layout import FRAME_TEMPLATE, N_FRAMES_FILE
from vidrec.errors import DecodeError

PARTIAL_SUFFIX = ".partial"
#: A clip longer than its CSV segment by more than this many seconds is a whole video: it gets cut.
CUT_TOLERANCE_S = 1.0
#: A video that decodes fewer than this fraction of the frames its header announces is truncated (a failure);
#: a frame or two less is normal (HMDB51 AVIs announce one frame too many).
TRUNCATED_FRACTION = 0.9
_SOURCE_JPEG = re.compile(r"^(\d+)\.jpe?g$", re.IGNORECASE)


@dataclass(frozen=True)
class Job:
    """One video to extract: ``source`` (video file or JPEG folder) → frame folder ``dest``.

    ``segment`` (seconds, end exclusive) cuts the video when it is longer than the segment (Kinetics
    whole YouTube videos); a video that already has about the segment's length is kept whole.
    """

    source: Path
    dest: Path
    segment: tuple[float, float] | None = None


@dataclass(frozen=True)
class Options:
    """How frames are written: ``size`` is the short side in pixels (0 keeps the original size)."""

    size: int = 0
    quality: int = 90
    threads: int = 0  # decoder threads per video; 0 keeps the decoder's default


def scaled_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the short side scaled to ``size`` and the aspect ratio kept; ``size<=0`` keeps it."""
    if size <= 0:
        return width, height
    if width <= height:
        return size, max(1, round(height * size / width))
    return max(1, round(width * size / height)), size


def partial_path(dest: Path) -> Path:
    """The hidden temporary folder a job writes into before it is renamed onto ``dest``."""
    return dest.parent / f".{dest.name}{PARTIAL_SUFFIX}"


def _cut_window(container: av.container.InputContainer,
                segment: tuple[float, float] | None) -> tuple[float, float] | None:
    if segment is None or container.duration is None:
        return None
    duration = container.duration / av.time_base
    start, end = segment
    return (start, end) if duration > (end - start) + CUT_TOLERANCE_S else None


def _video_frames(path: Path, segment: tuple[float, float] | None, opts: Options) -> Iterator[Image.Image]:
    with av.open(str(path), metadata_errors="ignore") as container:
        if not container.streams.video:
            raise DecodeError(f"{path}: the file has no video stream")
        stream = container.streams.video[0]
        if opts.threads:
            stream.codec_context.thread_count = opts.threads
        window = _cut_window(container, segment)
        offset = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        if window is not None and window[0] > 0:
            container.seek(int(Fraction(window[0] + offset).limit_denominator() / stream.time_base),
                           stream=stream, backward=True)
        reformatter = VideoReformatter()  # reused: much faster than a fresh conversion per frame
        target: tuple[int, int] | None = None
        decoded = 0
        for frame in container.decode(stream):
            decoded += 1
            if window is not None:
                t = (frame.time if frame.time is not None else 0.0) - offset
                if t < window[0] - 1e-6:
                    continue
                if t >= window[1] - 1e-6:
                    break
            target = target or scaled_size(frame.width, frame.height, opts.size)
            if target == (frame.width, frame.height):
                rgb = reformatter.reformat(frame, format="rgb24")
            else:  # bicubic: ffmpeg's default scaler, which 3D-ResNets-PyTorch used
                rgb = reformatter.reformat(frame, format="rgb24", width=target[0], height=target[1],
                                           interpolation="BICUBIC")
            yield Image.fromarray(rgb.to_ndarray())
        if window is None and decoded < TRUNCATED_FRACTION * stream.frames - 2:
            raise DecodeError(f"{path}: only {decoded} of the {stream.frames} frames its header announces decode; "
                              "the file looks truncated: download it again")
    if window is not None and target is None:
        raise DecodeError(f"{path}: no frame in the segment [{window[0]}, {window[1]}) s; check the CSV times")


def source_jpegs(folder: Path) -> list[Path]:
    """The numbered JPEGs of a shipped frame folder (``00001.jpg``...), in order; gaps are an error."""
    numbered = sorted((int(m.group(1)), folder / name) for name in os.listdir(folder)
                      if (m := _SOURCE_JPEG.match(name)))
    for expected, (number, file) in enumerate(numbered, start=numbered[0][0] if numbered else 1):
        if number != expected:
            raise DecodeError(f"{folder}: frame {expected:05d}.jpg is missing (next is {file.name})")
    return [file for _, file in numbered]


def _folder_frames(folder: Path, opts: Options) -> Iterator[Image.Image | bytes]:
    target: tuple[int, int] | None = None
    for file in source_jpegs(folder):
        if opts.size <= 0:
            yield file.read_bytes()  # no resize: keep the shipped JPEG bytes, lossless and fast
            continue
        with Image.open(file) as img:
            rgb = img.convert("RGB")
        target = target or scaled_size(rgb.width, rgb.height, opts.size)
        yield rgb if rgb.size == target else rgb.resize(target, Image.Resampling.BICUBIC)


def _write_frames(frames: Iterable[Image.Image | bytes], folder: Path, quality: int) -> int:
    delay = float(os.environ.get("VIDREC_PREPROCESS_FRAME_DELAY") or 0)
    count = 0
    for count, frame in enumerate(frames, start=1):
        target = folder / FRAME_TEMPLATE.format(count)
        if isinstance(frame, bytes):
            target.write_bytes(frame)
        else:
            frame.save(target, "JPEG", quality=quality)
        if delay:
            time.sleep(delay)
    return count


def extract(job: Job, opts: Options) -> int:
    """Write the frames of ``job`` into ``job.dest`` (via a partial folder renamed at the end); return the count."""
    partial = partial_path(job.dest)
    if partial.exists():
        shutil.rmtree(partial)  # left by a killed run
    partial.mkdir(parents=True)
    try:
        if job.source.is_dir():
            frames: Iterable[Image.Image | bytes] = _folder_frames(job.source, opts)
        elif job.source.stat().st_size == 0:
            raise DecodeError(f"{job.source}: the file is empty (0 bytes); download it again or delete it")
        else:
            frames = _video_frames(job.source, job.segment, opts)
        count = _write_frames(frames, partial, opts.quality)
        if count == 0:
            raise DecodeError(f"{job.source}: no decodable frames")
        (partial / N_FRAMES_FILE).write_text(str(count))
        os.rename(partial, job.dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return count
