"""Shared command-line plumbing of the ``preprocess/`` commands: arguments, summaries, one-line errors."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vidrec.data.annotations import write_annotation
from vidrec.errors import ConfigError, VidrecError
from vidrec.preprocess.frames import Job, Options
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
