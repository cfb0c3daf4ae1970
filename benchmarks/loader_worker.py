"""One loader worker: re-encoded videos vs their sources end to end, and uint8 vs float clips out of the worker.

1. Loader clips/s with **one** worker (wall time; vidrec's ``VideoDataModule`` train loader: supervised decode
   + augment + collate, clips/s over whole batches after the first) on the Kinetics-like recipe (16×4 clips,
   scale 128-160, crop 112, batch 8) from two trees of 16 names each: the 340×256 H.264 benchmark video with a
   keyframe every 250 frames (the source), and the same file re-encoded by ``preprocess/reencode_videos.py``'s
   engine at short side 160 (CRF 23, keyframe every 16, no B-frames). Alternating rounds, the ratio is the
   median of the per-round ratios (re-encoded ÷ source): what one worker core delivers after the re-encode.
2. Worker CPU time per clip (one thread, in this process) of what a worker does for a batch of 8 from the
   re-encoded tree: decode, transform, collate, with ``ClipTransform.train_clip`` (uint8 out, normalised on the
   device: the loader since item 3 of issue #17) vs ``ClipTransform.train`` (float normalised out: before), and
   the bytes per clip each hands over.

    python benchmarks/loader_worker.py [--rounds 3] [--batches 6]
"""

from __future__ import annotations

import os

import common
import dataloader
import torch

from vidrec.data.annotations import make_entry, write_annotation
from vidrec.data.decoding import count_frames, read_frames
from vidrec.data.spec import DataSpec
from vidrec.data.transforms import ClipTransform
from vidrec.models.registry import KINETICS_MEAN, KINETICS_STD
from vidrec.preprocess.frames import Job
from vidrec.preprocess.reencode import Encoding, reencode

TARGET = 3.0  # half of reencode.py's decode-only target (6): augmentation and collation cost both sides alike
NAMES = 16


def trees() -> tuple[dict, dict]:
    """Dataset configs of the source tree and the re-encoded tree (16 hard links each, one annotation)."""
    source = common.bench_video(gop=250)
    base = common.CACHE / "loader_worker"
    encoded = base / "one_160.mp4"
    if not encoded.is_file():
        base.mkdir(parents=True, exist_ok=True)
        reencode(Job(source=source, dest=encoded), Encoding(short_side=160, threads=1))
    n = count_frames(source)
    if count_frames(encoded) != n:
        raise SystemExit(f"{encoded}: frame count differs from the source's {n}")
    configs = []
    for name, video in (("source", source), ("reencoded_160", encoded)):
        root = base / name
        (root / "a").mkdir(parents=True, exist_ok=True)
        for i in range(NAMES):
            link = root / "a" / f"v{i:02d}.mp4"
            if not link.exists():
                os.link(video, link)
        configs.append({**dataloader.kinetics_like(), "name": name, "root": str(root),
                        "annotation_path": str(base / "annotation.json")})
    write_annotation(base / "annotation.json", ["a"], {f"v{i:02d}": make_entry("training" if i < NAMES - 2 else "validation", "a", n) for i in range(NAMES)})
    return configs[0], configs[1]


def loader_rates(source: dict, encoded: dict, rounds: int, batches: int) -> tuple[float, float, float]:
    """(median ratio re-encoded ÷ source, re-encoded clips/s, source clips/s) with one worker."""
    ratios, rates = [], {"source": [], "encoded": []}
    for r in range(rounds):
        order = [("encoded", encoded), ("source", source)] if r % 2 == 0 else [("source", source), ("encoded", encoded)]
        got = {side: dataloader.loader_rate(cfg, 1, batches) for side, cfg in order}
        ratios.append(got["encoded"] / got["source"])
        for side, rate in got.items():
            rates[side].append(rate)
    return common.median(ratios), common.median(rates["encoded"]), common.median(rates["source"])


def worker_cpu(cfg: dict, rounds: int) -> dict[str, float]:
    """CPU seconds per clip of decode + transform + collate of a batch, uint8 out vs float out; bytes per clip."""
    spec = DataSpec.from_config(cfg)
    transform = ClipTransform.from_spec(spec, KINETICS_MEAN, KINETICS_STD)
    path = spec.location.root + "/a/v00.mp4"
    work = common.random_clip_indices(count_frames(path), cfg["batch_size"], frames=16, rate=4)
    clips = [read_frames(path, idx) for idx in work]

    def batch(out: str, decode: bool) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        made = []
        for idx, frames in zip(work, clips):
            frames = read_frames(path, idx) if decode else frames
            made.append(transform.train_clip(frames, True, g) if out == "uint8" else transform.train(frames, True, g))
        return torch.stack(made)

    n = len(work)
    whole = common.compare(lambda: batch("uint8", True), lambda: batch("float", True), n, rounds)
    transform_only = common.compare(lambda: batch("uint8", False), lambda: batch("float", False), n, rounds)
    uint8, floats = batch("uint8", False), batch("float", False)
    return {"ratio": whole.ratio, "uint8_ms_per_clip": 1e3 / whole.rate("candidate"),
            "float_ms_per_clip": 1e3 / whole.rate("reference"), "transform_ratio": transform_only.ratio,
            "uint8_transform_ms": 1e3 / transform_only.rate("candidate"),
            "float_transform_ms": 1e3 / transform_only.rate("reference"),
            "uint8_bytes_per_clip": uint8[0].nbytes, "float_bytes_per_clip": floats[0].nbytes}


def main() -> None:
    args = common.options(__doc__, rounds=3, batches=6)
    common.header("one loader worker: re-encoded (160) vs source tree end to end (wall); uint8 vs float out (CPU)")
    source, encoded = trees()
    print(f"source: {common.video_info(common.bench_video(gop=250))}")
    ratio, enc_rate, src_rate = loader_rates(source, encoded, args.rounds, args.batches)
    print(f"loader, 1 worker, 16x4 clips @ 112 px, batch 8: re-encoded {enc_rate:.1f} vs source {src_rate:.1f} "
          f"clips/s, ratio {ratio:.2f}")
    common.one_worker_thread()
    cpu = worker_cpu(encoded, args.rounds)
    print(f"worker CPU per clip (decode + transform + collate, re-encoded tree): uint8 out "
          f"{cpu['uint8_ms_per_clip']:.1f} ms vs float out {cpu['float_ms_per_clip']:.1f} ms (float/uint8 "
          f"{cpu['ratio']:.2f}); transform alone {cpu['uint8_transform_ms']:.1f} vs {cpu['float_transform_ms']:.1f} ms "
          f"({cpu['transform_ratio']:.2f}); {cpu['uint8_bytes_per_clip']:,} vs {cpu['float_bytes_per_clip']:,} bytes per clip")
    common.finish("loader_worker", ratio, TARGET, {"loader_1_worker": {"ratio": ratio, "reencoded_clips_per_s": enc_rate,
                                                                       "source_clips_per_s": src_rate},
                                                    "worker_cpu": cpu})


if __name__ == "__main__":
    main()
