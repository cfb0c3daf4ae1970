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
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    from vidrec.io import atomic_write_text

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
def _items(annotation: Any, root: str, source: str, path_format: str, video_ext: str, subsets: set[str] | None,
           excluded: set[str]) -> tuple[list[Item], int]:
    """The present videos of ``subsets`` (all when ``None``) not in ``excluded``; and how many were excluded."""
    from vidrec.data.layout import FRAME_TEMPLATE, entry_relpath

    items, n_excluded, seen = [], 0, set()
    for e in annotation.entries:
        if subsets is not None and e.subset not in subsets:
            continue
        if e.video_id in excluded:
            n_excluded += 1
            continue
        rel = entry_relpath(path_format, e.video_id, e.label, e.subset)
        path = Path(root) / (rel if source == "frames" else f"{rel}{video_ext}")
        present = (path / FRAME_TEMPLATE.format(1)).is_file() if source == "frames" else path.is_file()
        if present and str(path) not in seen:
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Scan what the data check's arguments name; returns a summary (also printed by the check)."""
    from vidrec.data import check
    from vidrec.data.annotations import load_annotation
    from vidrec.data.datamodule import available_cpus
    from vidrec.data.exclude import read_excluded

    if args.annotation is not None:
        annotation = load_annotation(args.annotation)
        root, source, fmt, ext = str(args.root), args.source, args.path_format, args.video_ext
        subsets, exclude, timeout, backend = None, None, 60.0, "auto"
    else:
        cfg = check.compose_train_config(args.overrides)
        dataset, data = check._resolved(cfg, "dataset"), check._resolved(cfg, "data")
        annotation_path, root = check.dataset_files(dataset)
        annotation = load_annotation(annotation_path)
        source, fmt = str(dataset.get("source", "frames")), str(dataset.get("path_format", "{label}/{video_id}"))
        ext, subsets = str(dataset.get("video_ext", ".mp4")), set(check._stage_subsets(dataset).values())
        exclude, backend = data.get("exclude"), str(data.get("decoder", "auto"))
        timeout = float(data.get("decode_timeout_s") or 60)
    items, n_excluded = _items(annotation, root, source, fmt, ext, subsets, read_excluded(exclude) if exclude else set())
    records = scan(items, args.out, args.timeout or timeout, args.workers or available_cpus(), args.sample, backend)
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
