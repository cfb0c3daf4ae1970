"""Kinetics: crawler CSVs (``label,youtube_id,time_start,time_end,split[,is_cc]``; the test CSV has no label)
and downloads named ``<youtube_id>_<start:06d>_<end:06d>.mp4`` (trimmed clips, in ``<label>/`` or ``test/``)
or ``<youtube_id>.mp4`` (whole YouTube videos, cut to the CSV segment during extraction, needs ``--csv``).
Whether a file is the trimmed clip or the untrimmed video is judged from its duration against the segment
(:func:`vidrec.preprocess.frames.segment_decision`), not from its name; ``--trimmed``/``--untrimmed`` force it.

The video id is ``{youtube_id}_{time_start:06d}_{time_end:06d}``, as the crawler names its files; frame folders
go to ``jpg_dir/<label>/<video_id>/`` (``test/`` for unlabelled videos), the path the annotation JSON implies.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vidrec.data.annotations import make_entry
from vidrec.data.layout import UNLABELLED_DIR, VIDEO_EXTENSIONS
from vidrec.errors import AnnotationError
from vidrec.preprocess.cli import add_segment_args, extraction_parser, run_extraction, write_dataset_json
from vidrec.preprocess.frames import Job
from vidrec.preprocess.labelfiles import read_csv_rows, read_lines
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


def extract_main(argv: Sequence[str] | None = None) -> int:
    """``video_jpg_kinetics.py video_dir jpg_dir [--csv ...]``."""
    parser = extraction_parser("Kinetics videos → JPEG frame folders jpg_dir/<label>/<video_id>/.", "video_dir",
                               "downloaded videos: <label>/<youtube_id>_<start>_<end>.mp4 (and test/), or whole "
                               "videos <youtube_id>.mp4 with --csv", 240)
    parser.add_argument("--csv", type=Path, action="append", default=[],
                        help="crawler CSV(s) giving labels and segments (repeat for train/val/test); needed to cut "
                             "whole videos named <youtube_id>.mp4")
    force = parser.add_mutually_exclusive_group()
    force.add_argument("--trimmed", dest="trimmed", action="store_const", const=True, default=None,
                       help="every file is already its segment's clip: never cut (default: judged per file from its "
                            "duration against the segment)")
    force.add_argument("--untrimmed", dest="trimmed", action="store_const", const=False,
                       help="every file is the whole YouTube video: always cut to the segment")
    args = parser.parse_args(argv)
    clips = [c for path in args.csv for c in read_clips(path, "testing")]  # "testing": label column optional
    jobs, unknown = kinetics_jobs(args.src, args.dst, clips, args.trimmed)
    if unknown:
        print(f"note: {len(unknown)} videos are not named <youtube_id>_<start>_<end> and no --csv row describes "
              f"them (e.g. {unknown[0].name}); they are extracted whole. Pass --csv to cut them to their segment.")
    return run_extraction(jobs, args)


def json_main(argv: Sequence[str] | None = None) -> int:
    """``kinetics_json.py train_csv val_csv test_csv dst_json``."""
    parser = argparse.ArgumentParser(description="Kinetics crawler CSVs → annotation JSON (kenshohara format).")
    parser.add_argument("train_csv", type=Path)
    parser.add_argument("val_csv", type=Path)
    parser.add_argument("test_csv", type=Path, help="test CSV (no label column), or - to leave the test set out")
    parser.add_argument("dst_json", type=Path)
    parser.add_argument("--label-order", choices=("sorted", "csv"), default="sorted",
                        help="labels sorted alphabetically (default) or in order of first appearance in the "
                             "training CSV (3D-ResNets-PyTorch's kinetics_json.py)")
    parser.add_argument("--labels", type=Path, default=None,
                        help="the full class list, one name per line (e.g. the 400 Kinetics-400 classes): the JSON "
                             "lists exactly these, in this order, so a partial copy keeps the class indices of "
                             "released models")
    add_segment_args(parser)
    args = parser.parse_args(argv)
    train = read_clips(args.train_csv, "training")
    clips = train + read_clips(args.val_csv, "validation")
    if str(args.test_csv) != "-":
        clips += read_clips(args.test_csv, "testing")
    labels = list(dict.fromkeys(c.label for c in train if c.label))
    labels = sorted(labels) if args.label_order == "sorted" else labels
    if args.labels is not None:
        labels = [text for _, text in read_lines(args.labels)]
        if len(set(labels)) != len(labels):
            raise AnnotationError(f"--labels {args.labels}: a class is listed twice")
    database = {}
    for clip in clips:
        if clip.label is not None and clip.label not in labels:
            raise AnnotationError(f"{args.val_csv}: label {clip.label!r} of {clip.video_id} never occurs in "
                                  f"{args.labels or args.train_csv}")
        database[clip.video_id] = make_entry(clip.subset, clip.label)
    write_dataset_json(args.dst_json, labels, database, args, PATH_FORMAT)
    return 0
