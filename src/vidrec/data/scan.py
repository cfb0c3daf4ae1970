"""Pre-flight decode scan: decode every video of a dataset in supervised child processes, before a long run.

    python -m vidrec.data.check <train.py overrides> --decode [--sample N] [--workers W] [--out DIR]
    python -m vidrec.data.check --annotation A --root R [--source video] --decode ...

Each video is decoded whole (``--sample N``: N evenly spaced frames) in an isolated decoder process
(:mod:`vidrec.data.isolation`) with the timeout of ``data.decode_timeout_s`` (``--timeout`` overrides it), W at a
time, with a progress bar. Every result is appended to ``DIR/decode_manifest.jsonl`` as it comes, so a scan that
is stopped (even by ``kill -9``) resumes where it stopped: a rerun decodes only the videos not in the manifest.
At the end ``DIR/bad_videos.csv`` lists the videos that failed (``video_id, path, reason``); pass it to a run as
``data.exclude=DIR/bad_videos.csv``. The config form scans the subsets that train, val and test read, minus the
videos its ``data.exclude`` already leaves out; the ``--annotation`` form scans every subset.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidrec.data.spec import Location
from vidrec.errors import VidrecError

MANIFEST = "decode_manifest.jsonl"
BAD_VIDEOS = "bad_videos.csv"


@dataclass(frozen=True)
class Item:
    """One video to scan."""

    video_id: str
    path: str


def decode_all(path: str, sample: int | None, backend: str = "auto") -> int:
    """Decode ``path`` (video or frame folder) whole, or ``sample`` evenly spaced frames; return the frame count.
    Runs inside the decoder child; any failure raises."""
    from vidrec.data import decoding

    if sample is None and not decoding.is_frame_folder(path):
        return decoding.count_frames(path, exact=True)
    n = decoding.count_frames(path, exact=False)
    if sample is None:  # a frame folder: every image, a chunk at a time
        for start in range(0, n, 64):
            decoding.read_frames(path, range(start, min(n, start + 64)))
        return n
    k = max(1, min(sample, n))
    decoding.read_frames(path, sorted({round(j * (n - 1) / max(1, k - 1)) for j in range(k)}), backend=backend)
    return n


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """Records of a manifest by video path; a last line cut by a kill is ignored."""
    done: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                done[record["path"]] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return done


def _reason(message: str, path: str) -> str:
    return message[len(path) + 2:] if message.startswith(f"{path}: ") else message


def scan(items: Sequence[Item], out: str | os.PathLike, timeout: float, workers: int = 1, sample: int | None = None,
         backend: str = "auto", progress: bool | None = None) -> list[dict[str, Any]]:
    """Decode the items not yet in ``out/decode_manifest.jsonl``, append their results, write ``bad_videos.csv``;
    return the records of ``items`` (``video_id, path, ok, reason, frames``)."""
    from tqdm import tqdm

    from vidrec.data.isolation import Supervisor
    from vidrec.files import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST
    done = read_manifest(manifest)
    if manifest.is_file() and manifest.read_bytes()[-1:] not in (b"", b"\n"):
        with open(manifest, "a", encoding="utf-8") as handle:  # end a line a kill cut off
            handle.write("\n")
    todo = [it for it in items if it.path not in done]
    local = threading.local()
    supervisors: list[Supervisor] = []
    lock = threading.Lock()

    def one(item: Item) -> dict[str, Any]:
        if not hasattr(local, "supervisor"):
            local.supervisor = Supervisor()
            with lock:
                supervisors.append(local.supervisor)
        record = {"video_id": item.video_id, "path": item.path, "ok": True, "reason": "", "frames": None}
        try:
            record["frames"] = local.supervisor.call(decode_all, (item.path, sample, backend), timeout, item.path)
        except Exception as exc:  # every failure is a result of the scan
            text = str(exc) if isinstance(exc, VidrecError) else f"{type(exc).__name__}: {exc}"
            record.update(ok=False, reason=_reason(" ".join(text.split()), item.path))
        return record

    try:
        with open(manifest, "a", encoding="utf-8") as handle, ThreadPoolExecutor(max(1, workers)) as pool, \
                tqdm(total=len(items), initial=len(items) - len(todo), unit="video", desc="decode scan",
                     disable=None if progress is None else not progress) as bar:
            for record in pool.map(one, todo):
                handle.write(json.dumps(record) + "\n")
                handle.flush()
                done[record["path"]] = record
                bar.update()
    finally:
        for supervisor in supervisors:
            supervisor.close()
    records = [done[it.path] for it in items]
    bad = sorted((r for r in records if not r["ok"]), key=lambda r: r["video_id"])
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["video_id", "path", "reason"])
    writer.writerows([r["video_id"], r["path"], r["reason"]] for r in bad)
    atomic_write_text(out / BAD_VIDEOS, buf.getvalue())
    return records


# ---------------------------------------------------------------- what to scan, and the command line
def _items(annotation: Any, location: Location, subsets: set[str] | None, excluded: set[str]) -> tuple[list[Item], int]:
    """The present videos of ``subsets`` (all when ``None``) not in ``excluded``; and how many were excluded."""
    items, n_excluded, seen = [], 0, set()
    for e in annotation.entries:
        if subsets is not None and e.subset not in subsets:
            continue
        if e.video_id in excluded:
            n_excluded += 1
            continue
        path = location.path(e)
        if location.is_present(e) and str(path) not in seen:
            seen.add(str(path))
            items.append(Item(e.video_id, str(path)))
    return items, n_excluded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scan's options, added to the data check's parser."""
    parser.add_argument("--decode", action="store_true", help="decode every video in isolated processes and "
                                                              "write bad_videos.csv (resumable)")
    parser.add_argument("--sample", type=int, default=None, help="with --decode: N evenly spaced frames per video")
    parser.add_argument("--workers", type=int, default=None, help="decoder processes at once (default: CPU cores)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per video (default data.decode_timeout_s)")
    parser.add_argument("--out", type=Path, default=Path("data_check"), help="folder of the manifest and bad_videos.csv")


def run(args: argparse.Namespace, checked: dict[str, Any]) -> dict[str, Any]:
    """Scan the videos the data check found (``checked``: its result, which names the annotation, where the
    videos are, the subsets a run reads and the ``data`` policy); returns a summary."""
    from vidrec.data.annotations import load_annotation
    from vidrec.data.datamodule import available_cpus
    from vidrec.data.exclude import read_excluded
    from vidrec.data.spec import DataConfig

    data = DataConfig(**checked.get("data", {}))
    location = Location(checked["root"], checked["source"], checked["path_format"], checked["video_ext"])
    subsets = set(checked["stages"].values()) if "stages" in checked else None
    excluded = read_excluded(data.exclude) if data.exclude else set()
    items, n_excluded = _items(load_annotation(checked["annotation"]), location, subsets, excluded)
    timeout = args.timeout or (data.decode_timeout_s if data.decode_timeout_s is not None else math.inf)
    records = scan(items, args.out, timeout, args.workers or available_cpus(), args.sample, data.decoder)
    bad = [r for r in records if not r["ok"]]
    return {"scanned": len(records), "bad": len(bad), "excluded": n_excluded, "bad_videos": str(args.out / BAD_VIDEOS),
            "manifest": str(args.out / MANIFEST), "examples": [f"{r['video_id']}: {r['reason']}" for r in bad[:3]]}


def format_summary(summary: dict[str, Any]) -> str:
    """The scan's lines of the check report."""
    lines = [f"decode scan: {summary['scanned']} videos decoded, {summary['bad']} bad (listed in "
             f"{summary['bad_videos']}; manifest {summary['manifest']})"
             + (f"; {summary['excluded']} excluded by data.exclude, not scanned" if summary["excluded"] else "")]
    lines += [f"  bad: {e}" for e in summary["examples"]]
    if summary["bad"]:
        lines.append(f"  leave them out of a run with data.exclude={summary['bad_videos']}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - the command is `python -m vidrec.data.check ... --decode`
    from vidrec.data.check import main

    sys.exit(main())
