"""Listing the videos of a download as extraction jobs: ``class/video`` trees, flat folders, frame folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from vidrec.data.layout import VIDEO_EXTENSIONS
from vidrec.errors import DataError
from vidrec.preprocess.frames import Job


def _visible(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.iterdir()) if not p.name.startswith("."))


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a directory, else a one-line :class:`DataError` saying what it should hold."""
    if not path.is_dir():
        raise DataError(f"{path}: no such directory; pass the folder that holds {what}")
    return path


def class_tree_jobs(src: Path, dst: Path, suffixes: tuple[str, ...] = VIDEO_EXTENSIONS) -> list[Job]:
    """Jobs for ``src/<class>/<video>.<ext>`` → ``dst/<class>/<video>/``."""
    require_dir(src, "one folder per class with the videos inside")
    jobs = [Job(video, dst / class_dir.name / video.stem)
            for class_dir in _visible(src) if class_dir.is_dir()
            for video in _visible(class_dir) if video.suffix.lower() in suffixes and video.is_file()]
    if not jobs:
        raise DataError(f"{src}: no <class>/<video>{suffixes[0]} files found; pass the folder holding one "
                        "folder per class (unpack the archives first)")
    return jobs


def flat_jobs(src: Path, dst: Path, suffixes: tuple[str, ...] = VIDEO_EXTENSIONS) -> list[Job]:
    """Jobs for ``src/<video>.<ext>`` → ``dst/<video>/`` (Something-Something V2)."""
    require_dir(src, "the video files")
    jobs = [Job(video, dst / video.stem) for video in _visible(src)
            if video.suffix.lower() in suffixes and video.is_file()]
    if not jobs:
        raise DataError(f"{src}: no video files ({', '.join(suffixes)}) found; pass the folder holding the videos")
    return jobs


def frame_folder_jobs(src: Path, dst: Path) -> list[Job]:
    """Jobs for shipped frame folders ``src/<video>/00001.jpg`` → ``dst/<video>/`` (Something-Something V1)."""
    require_dir(src, "one folder of JPEG frames per video")
    jobs = [Job(folder, dst / folder.name) for folder in _visible(src) if folder.is_dir()]
    if not jobs:
        raise DataError(f"{src}: no frame folders found; pass the unpacked 20bn-something-something-v1 folder")
    return jobs
