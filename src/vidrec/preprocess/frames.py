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
from typing import NamedTuple

import av
from av.video.reformatter import VideoReformatter
from PIL import Image

from vidrec.data.layout import FPS_FILE, FRAME_TEMPLATE, N_FRAMES_FILE
from vidrec.data.stream import video_fps
from vidrec.data.video_seek import upright
from vidrec.errors import DecodeError

PARTIAL_SUFFIX = ".partial"
#: A file with a segment is a trimmed clip (kept whole) when it lasts at most the segment's length plus the
#: larger of these; public Kinetics clips run over their 10 s (an 11.08 s ``..._000121_000131.mp4`` is real).
TRIMMED_SLACK_S = 2.0
TRIMMED_SLACK_FRACTION = 0.25
#: A video that decodes fewer than this fraction of the frames its header announces is truncated (a failure);
#: a frame or two less is normal (HMDB51 AVIs announce one frame too many).
TRUNCATED_FRACTION = 0.9
_SOURCE_JPEG = re.compile(r"^(\d+)\.jpe?g$", re.IGNORECASE)


@dataclass(frozen=True)
class Job:
    """One video to extract: ``source`` (video file or JPEG folder) → frame folder ``dest``.

    ``segment`` (seconds, end exclusive) is cut out of an untrimmed video (Kinetics whole YouTube videos);
    ``trimmed`` says whether the file is already the segment (True: kept whole, False: cut), ``None``
    judges it from the file's duration (:func:`segment_decision`).
    """

    source: Path
    dest: Path
    segment: tuple[float, float] | None = None
    trimmed: bool | None = None


class Extracted(NamedTuple):
    """What :func:`extract` did: frames written, and for a job with a segment the decision that kept it whole
    or cut it (``"trimmed: <rule>"`` / ``"untrimmed: <rule>"``, ``""`` without a segment)."""

    frames: int
    segment_rule: str = ""


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


def segment_decision(duration: float | None, segment: tuple[float, float], trimmed: bool | None = None) -> tuple[bool, str]:
    """(cut the segment out of the file?, the rule that decided), from the file's ``duration`` in seconds.

    A file that ends before the segment starts cannot be the untrimmed video; one that lasts about the
    segment's length (its length plus ``max(TRIMMED_SLACK_S, TRIMMED_SLACK_FRACTION × length)``) is the
    trimmed clip; a longer one that reaches the segment's start is the untrimmed video. ``trimmed`` forces it.
    """
    if trimmed is not None:
        return not trimmed, "trimmed: --trimmed" if trimmed else "untrimmed: --untrimmed"
    if duration is None:
        return False, "trimmed: duration unknown"
    start, end = segment
    if duration <= start:
        return False, "trimmed: shorter than the segment's start"
    if duration <= (end - start) + max(TRIMMED_SLACK_S, TRIMMED_SLACK_FRACTION * (end - start)):
        return False, "trimmed: about the segment's length"
    return True, "untrimmed: longer than the segment and reaching its start"


def _duration_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if container.duration is not None:
        return container.duration / av.time_base
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return float(stream.frames / stream.average_rate) if stream.frames and stream.average_rate else None


def _video_frames(path: Path, job: Job, opts: Options, decision: list[str]) -> Iterator[Image.Image]:
    """Frames of a video file, cut to the job's segment when the file is untrimmed (the rule goes to ``decision``)."""
    with av.open(str(path), metadata_errors="ignore") as container:
        if not container.streams.video:
            raise DecodeError(f"{path}: the file has no video stream")
        stream = container.streams.video[0]
        if opts.threads:
            stream.codec_context.thread_count = opts.threads
        window, duration = None, _duration_s(container, stream)
        if job.segment is not None:
            cut, rule = segment_decision(duration, job.segment, job.trimmed)
            decision.append(rule)
            window = job.segment if cut else None
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
            target = target or scaled_size(frame.width, frame.height, opts.size)  # the short side: rotation keeps it
            if target == (frame.width, frame.height):
                rgb = reformatter.reformat(frame, format="rgb24")
            else:  # bicubic: ffmpeg's default scaler, which 3D-ResNets-PyTorch used
                rgb = reformatter.reformat(frame, format="rgb24", width=target[0], height=target[1],
                                           interpolation="BICUBIC")
            yield Image.fromarray(upright(rgb.to_ndarray(), frame.rotation))  # as players show it (phone videos)
        if window is None and decoded < TRUNCATED_FRACTION * stream.frames - 2:
            raise DecodeError(f"{path}: only {decoded} of the {stream.frames} frames its header announces decode; "
                              "the file looks truncated: download it again")
    if window is not None and target is None:
        length = f"{duration:.2f} s" if duration is not None else "unknown duration"
        raise DecodeError(f"{path}: no frame in the segment [{window[0]:g}, {window[1]:g}) s of this {length} file "
                          f"({decision[-1]}); check the CSV times, or pass --trimmed if the file is the clip itself")


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


def extract(job: Job, opts: Options) -> Extracted:
    """Write the frames of ``job`` into ``job.dest`` (via a partial folder renamed at the end)."""
    partial = partial_path(job.dest)
    if partial.exists():
        shutil.rmtree(partial)  # left by a killed run
    partial.mkdir(parents=True)
    decision: list[str] = []
    try:
        if job.source.is_dir():
            frames: Iterable[Image.Image | bytes] = _folder_frames(job.source, opts)
        elif job.source.stat().st_size == 0:
            raise DecodeError(f"{job.source}: the file is empty (0 bytes); download it again or delete it")
        else:
            frames = _video_frames(job.source, job, opts, decision)
        count = _write_frames(frames, partial, opts.quality)
        if count == 0:
            raise DecodeError(f"{job.source}: no decodable frames")
        (partial / N_FRAMES_FILE).write_text(str(count))
        fps = None if job.source.is_dir() else video_fps(job.source)
        if fps:  # the rate time-based sampling needs (dataset.clip.fps)
            (partial / FPS_FILE).write_text(repr(fps))
        os.rename(partial, job.dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Extracted(count, decision[0] if decision else "")
