"""Kinetics: crawler CSVs (``label,youtube_id,time_start,time_end,split[,is_cc]``; the test CSV has no label)
and downloads named ``<youtube_id>_<start:06d>_<end:06d>.mp4`` (trimmed clips, in ``<label>/`` or ``test/``)
or ``<youtube_id>.mp4`` (whole YouTube videos, cut to the CSV segment during extraction, needs ``--csv``).
Whether a file is the trimmed clip or the untrimmed video is judged from its duration against the segment
(:func:`vidrec.preprocess.frames.segment_decision`), not from its name; ``--trimmed``/``--untrimmed`` force it.

The video id is ``{youtube_id}_{time_start:06d}_{time_end:06d}``, as the crawler names its files; frame folders
go to ``jpg_dir/<label>/<video_id>/`` (``test/`` for unlabelled videos), the path the annotation JSON implies.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vidrec.data.layout import UNLABELLED_DIR, VIDEO_EXTENSIONS
from vidrec.errors import AnnotationError
from vidrec.preprocess.frames import Job
from vidrec.preprocess.labelfiles import read_csv_rows
from vidrec.preprocess.layout import require_dir

PATH_FORMAT = "{label}/{video_id}"
_TRIMMED = re.compile(r"^(?P<yid>.+)_(?P<start>\d{6})_(?P<end>\d{6})$")


@dataclass(frozen=True)
class Clip:
    """One CSV row."""

    youtube_id: str
    start: int
    end: int
    label: str | None
    subset: str

    @property
    def video_id(self) -> str:
        return f"{self.youtube_id}_{self.start:06d}_{self.end:06d}"


def _seconds(path: Path, row_number: int, value: str) -> int:
    try:
        return int(float(value))
    except ValueError:
        raise AnnotationError(f"{path}: row {row_number}: time {value!r} is not a number of seconds") from None


def read_clips(path: Path, subset: str) -> list[Clip]:
    """Clips of a crawler CSV; ``testing`` CSVs need no ``label`` column."""
    required = ("youtube_id", "time_start", "time_end") + (() if subset == "testing" else ("label",))
    clips = []
    for number, row in enumerate(read_csv_rows(path, required), start=2):
        if not row["youtube_id"]:
            raise AnnotationError(f"{path}: row {number} has an empty youtube_id")
        label = row.get("label") or None
        if label is None and subset != "testing":
            raise AnnotationError(f"{path}: row {number} has an empty label in a {subset} CSV")
        clips.append(Clip(row["youtube_id"], _seconds(path, number, row["time_start"]),
                          _seconds(path, number, row["time_end"]), label, subset))
    return clips


def _video_files(src: Path) -> list[Path]:
    """Videos directly in ``src`` or in its class folders."""
    found = []
    for entry in sorted(require_dir(src, "the downloaded Kinetics videos").iterdir()):
        children = sorted(entry.iterdir()) if entry.is_dir() and not entry.name.startswith(".") else [entry]
        found += [p for p in children if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()]
    return found


def kinetics_jobs(src: Path, dst: Path, clips: Sequence[Clip],
                  trimmed: bool | None = None) -> tuple[list[Job], list[Path]]:
    """Extraction jobs, plus the whole videos that no CSV row describes (extracted uncut).

    ``trimmed`` (``None``: judged per file at extraction) says whether the files with a segment are trimmed clips.
    """
    by_id = {clip.video_id: clip for clip in clips}
    by_youtube: dict[str, list[Clip]] = defaultdict(list)
    for clip in clips:
        by_youtube[clip.youtube_id].append(clip)
    jobs, unknown = [], []
    for video in _video_files(src):
        folder = video.parent.name if video.parent != src else UNLABELLED_DIR
        named = _TRIMMED.match(video.stem)
        if named:  # the name carries the segment: cut only if the file is in fact the whole video
            clip = by_id.get(video.stem)
            label_dir = (clip.label or UNLABELLED_DIR) if clip else folder
            segment = (float(named.group("start")), float(named.group("end")))
            jobs.append(Job(video, dst / label_dir / video.stem, segment, trimmed))
        elif video.stem in by_youtube:
            jobs += [Job(video, dst / (c.label or UNLABELLED_DIR) / c.video_id, (float(c.start), float(c.end)), trimmed)
                     for c in by_youtube[video.stem]]
        else:
            unknown.append(video)
            jobs.append(Job(video, dst / folder / video.stem))
    return jobs, unknown
