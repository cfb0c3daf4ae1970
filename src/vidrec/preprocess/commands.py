"""The ``preprocess/`` commands: their arguments, what they print, one-line errors. The dataset modules beside
this one (ucf101, hmdb51, kinetics, something, nframes, frames, reencode) hold what the commands do and take no
command-line arguments; each script in ``preprocess/`` runs one ``*_main`` of this module under :func:`run`."""


from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vidrec.data.annotations import make_entry, write_annotation
from vidrec.errors import AnnotationError, ConfigError, VidrecError
from vidrec.preprocess import hmdb51, kinetics, nframes, reencode, something, ucf101
from vidrec.preprocess.frames import Job, Options
from vidrec.preprocess.labelfiles import read_lines
from vidrec.preprocess.layout import class_tree_jobs, flat_jobs, frame_folder_jobs
from vidrec.preprocess.nframes import fill_segments
from vidrec.preprocess.runner import run_jobs, write_failures

FAILURES_FILE = "failures.csv"


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)``; a vidrec or OS error becomes one ``error: ...`` line on stderr and exit code 2."""
    try:
        return main(argv)
    except (VidrecError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume where it stopped", file=sys.stderr)
        return 130


def _usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def extraction_parser(description: str, src: str, src_help: str, default_size: int) -> argparse.ArgumentParser:
    """Parser with 3D-ResNets-PyTorch's positional ``<src> jpg_dir`` plus the engine's options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("src", type=Path, metavar=src, help=src_help)
    parser.add_argument("dst", type=Path, metavar="jpg_dir", help="output folder for the frame folders")
    parser.add_argument("--size", type=int, default=default_size,
                        help=f"short side of the written frames in pixels, 0 keeps the original (default {default_size})")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality 1-100 (default 90)")
    parser.add_argument("--workers", type=int, default=_usable_cpus(),
                        help="parallel worker processes (default: the CPUs this process may use)")
    parser.add_argument("--strict", action="store_true", help="stop at the first video that fails")
    return parser


def run_extraction(jobs: Sequence[Job], args: argparse.Namespace) -> int:
    """Run the engine for a parsed :func:`extraction_parser` command and print what it did."""
    if not 1 <= args.quality <= 100:
        raise ConfigError(f"--quality {args.quality}: use a JPEG quality between 1 and 100")
    if args.size < 0 or args.workers < 1:
        raise ConfigError("--size must be >= 0 (0 keeps the size) and --workers >= 1")
    print(f"{len(jobs)} videos from {args.src} → {args.dst} (short side {args.size or 'kept'}, "
          f"quality {args.quality}, {args.workers} workers)", flush=True)
    report = run_jobs(jobs, Options(size=args.size, quality=args.quality), workers=args.workers, strict=args.strict)
    failures_path = args.dst / FAILURES_FILE
    write_failures(failures_path, report.failures)
    rate = report.frames / report.seconds if report.seconds > 0 else 0.0
    print(f"extracted {report.extracted} videos ({report.frames} frames, {rate:.0f} frames/s), "
          f"{report.skipped} already done, {len(report.failures)} failed")
    if report.segment_rules:
        print(report.segment_summary())
    if report.failures:
        print(f"failed videos and reasons: {failures_path}; fix or remove them and run again")
    return 0


def add_segment_args(parser: argparse.ArgumentParser) -> None:
    """``--jpg-dir`` (fill each entry's segment from its frame folder) and ``--drop-missing``."""
    parser.add_argument("--jpg-dir", type=Path, default=None,
                        help="frame folders (after n_frames_*.py): fills segment [1, n_frames] of each entry")
    parser.add_argument("--drop-missing", action="store_true",
                        help="with --jpg-dir: leave out the videos that have no frame folder")


def write_dataset_json(path: Path, labels: list[str], database: dict[str, dict[str, Any]],
                       args: argparse.Namespace, path_format: str) -> None:
    """Fill segments when ``args.jpg_dir`` is set, write the annotation atomically and print a summary."""
    note = ""
    if args.jpg_dir is not None:
        missing = fill_segments(database, args.jpg_dir, path_format, drop=args.drop_missing)
        verb = "left out" if args.drop_missing else "kept without segment"
        note = f"; {len(missing)} without frame folder in {args.jpg_dir} ({verb})" if missing else ""
        if missing:
            note += f", e.g. {', '.join(missing[:3])}"
    write_annotation(path, labels, database)
    subsets = Counter(item["subset"] for item in database.values())
    print(f"wrote {path}: {len(labels)} labels, {len(database)} videos ("
          + ", ".join(f"{name} {count}" for name, count in sorted(subsets.items())) + f"){note}")


SplitBuilder = Callable[[Path, int], tuple[list[str], dict[str, dict[str, Any]]]]


def split_json_main(argv: Sequence[str] | None, description: str, dir_help: str, build_split: SplitBuilder,
                    filename: str, splits: Sequence[int], path_format: str) -> int:
    """The ``<dataset>_json.py annotation_dir`` commands of split datasets: one JSON per split,
    named ``filename.format(split=N)``, in ``--dst-dir`` (default: ``annotation_dir``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("annotation_dir", type=Path, help=dir_help)
    parser.add_argument("--dst-dir", type=Path, default=None, help="where to write the JSON files (default: annotation_dir)")
    add_segment_args(parser)
    args = parser.parse_args(argv)
    for split in splits:
        labels, database = build_split(args.annotation_dir, split)
        write_dataset_json((args.dst_dir or args.annotation_dir) / filename.format(split=split), labels, database,
                           args, path_format)
    return 0


def ucf101_json_main(argv: Sequence[str] | None = None) -> int:
    """``ucf101_json.py annotation_dir``: write ucf101_01.json ... ucf101_03.json."""
    return split_json_main(argv, "UCF101 split files → ucf101_0{1,2,3}.json (kenshohara format).", "ucfTrainTestlist folder (classInd.txt, trainlist0N.txt, testlist0N.txt)", ucf101.build_split, "ucf101_0{split}.json", ucf101.SPLITS, ucf101.PATH_FORMAT)


def ucf101_hmdb51_extract_main(argv: Sequence[str] | None = None) -> int:
    """``video_jpg_ucf101_hmdb51.py avi_dir jpg_dir``: ``<class>/<video>.avi`` → ``<class>/<video>/image_*.jpg``."""
    parser = extraction_parser("UCF101/HMDB51 videos (class/video.avi tree) → JPEG frame folders.", "avi_dir",
                               "folder with one sub-folder of .avi files per class (UCF-101/ or hmdb51_org/)", 240)
    args = parser.parse_args(argv)
    return run_extraction(class_tree_jobs(args.src, args.dst, (".avi",)), args)


def hmdb51_json_main(argv: Sequence[str] | None = None) -> int:
    """``hmdb51_json.py annotation_dir``: write hmdb51_1.json ... hmdb51_3.json."""
    return split_json_main(argv, "HMDB51 split files → hmdb51_{1,2,3}.json (kenshohara format).", "testTrainMulti_7030_splits folder (<class>_test_splitN.txt)", hmdb51.build_split, "hmdb51_{split}.json", hmdb51.SPLITS, hmdb51.PATH_FORMAT)


def kinetics_extract_main(argv: Sequence[str] | None = None) -> int:
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
    clips = [c for path in args.csv for c in kinetics.read_clips(path, "testing")]  # "testing": label column optional
    jobs, unknown = kinetics.kinetics_jobs(args.src, args.dst, clips, args.trimmed)
    if unknown:
        print(f"note: {len(unknown)} videos are not named <youtube_id>_<start>_<end> and no --csv row describes "
              f"them (e.g. {unknown[0].name}); they are extracted whole. Pass --csv to cut them to their segment.")
    return run_extraction(jobs, args)


def kinetics_json_main(argv: Sequence[str] | None = None) -> int:
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
    train = kinetics.read_clips(args.train_csv, "training")
    clips = train + kinetics.read_clips(args.val_csv, "validation")
    if str(args.test_csv) != "-":
        clips += kinetics.read_clips(args.test_csv, "testing")
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
    write_dataset_json(args.dst_json, labels, database, args, kinetics.PATH_FORMAT)
    return 0


def something_json_main(argv: Sequence[str] | None = None) -> int:
    """``something_json.py annotation_dir [--v2]``: write something_v1.json (or something_v2.json)."""
    parser = argparse.ArgumentParser(description="Something-Something label files → annotation JSON (kenshohara format).")
    parser.add_argument("annotation_dir", type=Path, help="folder with the official label files")
    parser.add_argument("--v2", action="store_true", help="Something-Something V2 JSON label files (default: V1 CSVs)")
    parser.add_argument("--dst", type=Path, default=None,
                        help="output JSON (default: annotation_dir/something_v1.json or something_v2.json)")
    add_segment_args(parser)
    args = parser.parse_args(argv)
    labels, database = something.build_v2(args.annotation_dir) if args.v2 else something.build_v1(args.annotation_dir)
    dst = args.dst or args.annotation_dir / f"something_v{2 if args.v2 else 1}.json"
    write_dataset_json(dst, labels, database, args, something.PATH_FORMAT)
    return 0


def something_v1_extract_main(argv: Sequence[str] | None = None) -> int:
    """``video_jpg_something.py origin_image_dir jpg_dir``: ``<id>/00001.jpg`` → ``<id>/image_00001.jpg``."""
    parser = extraction_parser("Something-Something V1 frame folders → image_00001.jpg frame folders (bytes copied "
                               "unless --size resizes).", "origin_image_dir",
                               "the unpacked 20bn-something-something-v1 folder (<id>/00001.jpg)", 0)
    args = parser.parse_args(argv)
    return run_extraction(frame_folder_jobs(args.src, args.dst), args)


def something_v2_extract_main(argv: Sequence[str] | None = None) -> int:
    """``video_jpg_something_v2.py webm_dir jpg_dir``: ``<id>.webm`` → ``<id>/image_00001.jpg``."""
    parser = extraction_parser("Something-Something V2 videos → JPEG frame folders.", "webm_dir",
                               "the unpacked 20bn-something-something-v2 folder (<id>.webm)", 0)
    args = parser.parse_args(argv)
    return run_extraction(flat_jobs(args.src, args.dst), args)


def n_frames_main(argv: Sequence[str] | None = None) -> int:
    """``n_frames_*.py jpg_dir``: write the ``n_frames`` file of every frame folder."""
    parser = argparse.ArgumentParser(description="Write an n_frames file (frame count) into every frame folder.")
    parser.add_argument("jpg_dir", type=Path, help="output folder of video_jpg_*.py")
    args = parser.parse_args(argv)
    folders, problems = nframes.write_n_frames(args.jpg_dir)
    for problem in problems:
        print(problem)
    print(f"wrote n_frames in {folders} frame folders under {args.jpg_dir}; {len(problems)} with problems")
    return 0


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def reencode_main(argv: Sequence[str] | None = None) -> int:
    """``reencode_videos.py SRC DST``: re-encode a video tree for training (see the module docstring)."""
    defaults = reencode.Encoding()
    parser = argparse.ArgumentParser(description="Re-encode a video tree for fast training reads (H.264, fixed "
                                     "GOP, no B-frames, frame counts kept). See docs/reencoding.md.")
    parser.add_argument("src", type=Path, help="folder of videos (any tree: class/video.avi, flat, ...)")
    parser.add_argument("dst", type=Path, help="output folder: same relative paths and stems, extension .mp4")
    parser.add_argument("--short-side", type=int, default=defaults.short_side,
                        help=f"short side in pixels, even; 0 keeps the size; never upscales (default {defaults.short_side})")
    parser.add_argument("--gop", type=int, default=defaults.gop, help=f"keyframe interval in frames (default {defaults.gop})")
    parser.add_argument("--crf", type=int, default=defaults.crf, help=f"x264 quality, 0-51, lower is better (default {defaults.crf})")
    parser.add_argument("--preset", default=defaults.preset, choices=reencode.X264_PRESETS,
                        help=f"x264 speed/size trade-off (default {defaults.preset})")
    parser.add_argument("--workers", type=int, default=_usable_cpus(), help="parallel worker processes (default: all CPUs)")
    parser.add_argument("--strict", action="store_true", help="stop at the first video that fails")
    args = parser.parse_args(argv)
    if args.short_side < 0 or args.short_side % 2 or args.gop < 1 or not 0 <= args.crf <= 51 or args.workers < 1:
        raise ConfigError("use an even --short-side >= 0, --gop >= 1, --crf in 0-51 and --workers >= 1")
    enc = reencode.Encoding(args.short_side, args.gop, args.crf, args.preset)
    jobs = reencode.tree_jobs(args.src, args.dst)
    args.dst.mkdir(parents=True, exist_ok=True)
    reencode.check_settings(args.dst, enc)
    print(f"{len(jobs)} videos from {args.src} → {args.dst} (short side {enc.short_side or 'kept'}, gop {enc.gop}, "
          f"crf {enc.crf}, preset {enc.preset}, {args.workers} workers)", flush=True)
    report = run_jobs(jobs, enc, workers=args.workers, strict=args.strict, work=reencode.reencode, done=Path.is_file)
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
