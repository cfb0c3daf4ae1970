"""What ``extract.py`` does: the features of every video of a folder or dataset subset, one ``<video_id>.npy``
(or an ``.npz`` shard per N videos) and a JSON index in the run dir; resumable, atomic per file, sharded over
DDP ranks (``RANK`` / ``WORLD_SIZE``), unreadable videos listed in ``skipped_videos.csv``."""

from __future__ import annotations

import io
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from vidrec.data.annotations import load_annotation
from vidrec.data.layout import FRAME_TEMPLATE, N_FRAMES_FILE, VIDEO_EXTENSIONS
from vidrec.data.spec import DataSpec
from vidrec.errors import ConfigError, DecodeError
from vidrec.evaluation import write_skipped
from vidrec.features import MODES, VideoFeatures, named_module, pooled_features, rank_share, sequence_features
from vidrec.files import atomic_open, atomic_write_json
from vidrec.inference import InferenceModel, load_inference_model, pick_device

log = logging.getLogger(__name__)


@dataclass
class Video:
    video_id: str
    path: Path


def holds_frames(path: Path) -> bool:
    """A folder of extracted frames: it holds ``image_00001.jpg`` (or an ``n_frames`` file)."""
    return (path / FRAME_TEMPLATE.format(1)).is_file() or (path / N_FRAMES_FILE).is_file()


def folder_videos(folder: str | Path) -> list[Video]:
    """The video files and frame folders under ``folder``, walked to any depth (a class-per-folder tree such as
    ``<class>/<clip>.mp4`` or ``<class>/<clip>/image_00001.jpg`` included); ids are paths relative to ``folder``
    without the extension (``<class>/<clip>``), in name order."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"videos={root}: no such folder; give a folder of video files or frame folders")
    found: list[Video] = []

    def walk(directory: Path) -> None:
        for path in sorted(directory.iterdir()):
            if path.is_dir():
                if holds_frames(path):
                    found.append(Video(path.relative_to(root).as_posix(), path))
                else:
                    walk(path)
            elif path.suffix.lower() in VIDEO_EXTENSIONS:
                found.append(Video(path.relative_to(root).with_suffix("").as_posix(), path))

    walk(root)
    if not found:
        raise ConfigError(f"videos={root}: no video files ({', '.join(VIDEO_EXTENSIONS)}) or frame folders (with "
                          f"{FRAME_TEMPLATE.format(1)}) in it or below it")
    return found


def dataset_videos(dataset: Any) -> tuple[list[Video], list[str]]:
    """The videos of a dataset config's test subset (``dataset.test.subset``) and the ids missing on disk."""
    spec = DataSpec.from_config(dataset).with_synthetic_data()
    entries = load_annotation(spec.annotation_path).subset(spec.subset("test"))
    location = spec.location
    present = [Video(e.video_id, location.path(e)) for e in entries if location.is_present(e)]
    missing = [e.video_id for e in entries if not location.is_present(e)]
    return present, missing


def file_stem(video_id: str) -> str:
    """A video id as a file name (ids with folders, e.g. ``class/clip``, keep one file level)."""
    return video_id.replace("/", "__").replace(os.sep, "__")


def _read_records(out: Path) -> dict[str, dict[str, Any]]:
    """The records of earlier (partial) runs in ``out``: ``index.rank*.jsonl`` lines, a torn last line ignored."""
    records: dict[str, dict[str, Any]] = {}
    for path in sorted(out.glob("index.rank*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[record["video_id"]] = record
    return records


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        np.save(handle, array)


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with atomic_open(path, "wb") as handle:
        handle.write(buf.getvalue())


class Extractor:
    """One rank's extraction into ``out``."""

    def __init__(self, model: InferenceModel, fcfg: DictConfig, out: Path, device: str, decoder: str):
        self.model, self.out, self.device, self.decoder = model, out, device, decoder
        self.mode = str(fcfg.mode)
        if self.mode not in MODES:
            raise ConfigError(f"features.mode={self.mode}: use one of {', '.join(MODES)}")
        self.layer = fcfg.get("layer") or None
        if self.layer:
            named_module(model.net, self.layer)  # a wrong name fails here, before any video
        self.logits = bool(fcfg.get("logits"))
        self.frames = int(fcfg.get("frames") or model.spec.dataset.clip.frames)
        self.stride = int(fcfg.get("stride") or self.frames)
        self.shard_size = int(fcfg.get("shard_size") or 0)

    def features(self, video: Video) -> VideoFeatures:
        if self.mode == "pooled":
            return pooled_features(self.model, video.path, self.layer, self.device, self.decoder)
        return sequence_features(self.model, video.path, self.frames, self.stride, self.layer, self.device)

    def record(self, video: Video, result: VideoFeatures, file: str, key: str | None) -> dict[str, Any]:
        rec = {"video_id": video.video_id, "path": str(video.path), "file": file, "shape": list(result.features.shape),
               "frames": result.num_frames, "fps": result.fps, "clip_starts": result.starts}
        if key is not None:
            rec["key"] = key
        if self.logits:
            rec["logits_shape"] = list(result.logits.shape)
            rec["logits_key" if key is not None else "logits_file"] = (f"{key}.logits" if key is not None
                                                                     else f"{file_stem(video.video_id)}.logits.npy")
        return rec

    def done(self, video: Video, records: dict[str, dict[str, Any]]) -> bool:
        rec = records.get(video.video_id)
        return bool(rec) and (self.out / rec["file"]).is_file() and (not self.logits or "logits_shape" in rec)

    def run(self, videos: list[Video], rank: int, progress: bool = True) -> tuple[list, int, float]:
        """Extract ``videos`` not already done; returns (skipped (index, id, reason) rows, videos done now, seconds)."""
        records = _read_records(self.out)
        todo = [v for v in videos if not self.done(v, records)]
        if len(todo) < len(videos):
            log.info("rank %d: %d of %d videos already extracted in %s (skipped)", rank, len(videos) - len(todo),
                     len(videos), self.out)
        skipped: list[tuple[int, str, str]] = []
        groups = ([todo[i : i + self.shard_size] for i in range(0, len(todo), self.shard_size)] if self.shard_size
                  else [[v] for v in todo])
        shard_no = len(list(self.out.glob(f"shard-{rank:03d}-*.npz")))
        start, count = time.perf_counter(), 0
        bar = tqdm(total=len(todo), unit="video", desc=f"extract[{rank}]", disable=not progress, dynamic_ncols=True)
        with open(self.out / f"index.rank{rank:03d}.jsonl", "a", encoding="utf-8") as index:
            for group in groups:
                results = []
                for video in group:
                    try:
                        results.append((video, self.features(video)))
                    except DecodeError as exc:
                        skipped.append((len(skipped), video.video_id, str(exc)))
                        log.warning("skipped %s: %s", video.video_id, exc)
                    bar.update(1)
                if not results:
                    continue
                if self.shard_size:
                    name = f"shard-{rank:03d}-{shard_no:05d}.npz"
                    shard_no += 1
                    arrays = {}
                    for video, res in results:
                        arrays[video.video_id] = res.features
                        if self.logits:
                            arrays[f"{video.video_id}.logits"] = res.logits
                    _save_npz(self.out / name, arrays)
                    recs = [self.record(v, r, name, v.video_id) for v, r in results]
                else:
                    video, res = results[0]
                    name = f"{file_stem(video.video_id)}.npy"
                    if self.logits:
                        _save_npy(self.out / f"{file_stem(video.video_id)}.logits.npy", res.logits)
                    _save_npy(self.out / name, res.features)  # last: its presence marks the video done
                    recs = [self.record(video, res, name, None)]
                for rec in recs:
                    index.write(json.dumps(rec) + "\n")
                index.flush()
                count += len(results)
        bar.close()
        return skipped, count, time.perf_counter() - start


def _distributed() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def extract(dcfg: DictConfig) -> dict[str, Any]:
    """What ``extract.py`` does; returns the index (rank 0) or an empty dict (other ranks)."""
    fcfg = dcfg.features
    out = Path(str(fcfg.get("out_dir") or ".")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    missing: list[str] = []
    if dcfg.get("videos"):
        videos = folder_videos(dcfg.videos)
    elif dcfg.get("dataset"):
        videos, missing = dataset_videos(OmegaConf.to_container(dcfg.dataset, resolve=True))
    else:
        raise ConfigError("give videos=<folder of videos or frame folders> or dataset=<name> (dataset.test.subset=...)")
    rank, world, local = _distributed()
    device = str(dcfg.get("device", "auto"))
    if world > 1:
        import torch
        import torch.distributed as dist

        if device == "auto":
            device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    dev = str(pick_device(device))
    model = load_inference_model(dcfg)
    extractor = Extractor(model, fcfg, out, dev, str((dcfg.get("data") or {}).get("decoder") or "auto"))
    mine = rank_share(videos, rank, world)
    skipped, count, seconds = extractor.run(mine, rank, progress=bool(dcfg.get("progress", True)))
    rate = count / seconds if seconds > 0 and count else 0.0
    log.info("rank %d: %d videos extracted in %.1f s (%.2f videos/s), %d skipped", rank, count, seconds, rate,
             len(skipped))
    atomic_write_json(out / f"skipped.rank{rank:03d}.json",
                      {"skipped": [[i, v, r] for i, v, r in skipped], "count": count, "seconds": seconds})
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    if rank != 0:
        return {}
    all_skipped, total, slowest = [], 0, 0.0
    for path in sorted(out.glob("skipped.rank*.json")):
        part = json.loads(path.read_text())
        all_skipped += [tuple(row) for row in part["skipped"]]
        total += part["count"]
        slowest = max(slowest, part["seconds"])
    records = _read_records(out)
    order = {v.video_id: i for i, v in enumerate(videos)}
    index = {
        "model": model.name, "weights": model.source, "protocol": model.protocol(),
        "features": {"mode": extractor.mode, "layer": extractor.layer or "fc input",
                     "frames": extractor.frames if extractor.mode == "sequence" else None,
                     "stride": extractor.stride if extractor.mode == "sequence" else None,
                     "logits": extractor.logits, "shard_size": extractor.shard_size or None},
        "videos": sorted((r for r in records.values() if r["video_id"] in order), key=lambda r: order[r["video_id"]]),
        "skipped": len(all_skipped) + len(missing),
        "this_run": {"videos": total, "seconds": round(slowest, 3), "world_size": world, "device": dev,
                     "videos_per_s": round(total / slowest, 3) if slowest > 0 and total else None},
    }
    atomic_write_json(out / "index.json", index)
    write_skipped(out, {"extract": all_skipped} if all_skipped else {}, {"extract": missing} if missing else {})
    print(f"{len(index['videos'])} of {len(videos)} videos in {out / 'index.json'} "
          f"({total} extracted now at {index['this_run']['videos_per_s']} videos/s, {index['skipped']} skipped)",
          flush=True)
    return index
