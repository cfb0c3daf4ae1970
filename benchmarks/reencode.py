"""Re-encoded vs source videos: random 16×4 train clips per CPU second with vidrec's ``read_frames``, same run.

Each file is re-encoded by vidrec's engine (``preprocess/reencode_videos.py``: libx264, keyframe every 16
frames, no B-frames, ``tune=fastdecode``, CRF 23) at short side 160 (for 112 px recipes) and 256 (for 224 px
ones); then the same random training clips (vidrec's train sampler, same positions) are read from the
re-encoded file (candidate) and from the source (reference) in alternating rounds. Printed per file: the
frame counts (source decode vs re-encoded), the sizes, the encoding time, the quality (PSNR of the re-encoded
frames against the source frames resized bicubic to the same size, 3 clips), the largest per-frame thumbnail
difference the engine's check found (lossy error; its tolerance is printed beside it) and both clip rates.
Files: a Kinetics-like 340×256 H.264 MP4 (10 s at 30 fps, B-frames, a keyframe every 250 frames, rendered by
vidrec's synthetic generator) and the real UCF101/HMDB51 clips in ../shared/clips when present. The ratio
printed last is the Kinetics-like file's at short side 160 (target >= 6); at 256 the target is 3.

    python benchmarks/reencode.py [--clips 16] [--rounds 3] [--crf 23]
"""

from __future__ import annotations

import argparse
import shutil
import time
import zlib
from pathlib import Path

import common
import numpy as np
import torch

from vidrec.data.decoding import count_frames, read_frames
from vidrec.preprocess.reencode import SIGNATURE_TOLERANCE, Encoding, check, encode

TARGETS = {160: 6.0, 256: 3.0}


def psnr(source: Path, encoded: Path, clips: list[list[int]]) -> float:
    """PSNR (dB) of the re-encoded frames against the source's, resized bicubic to the re-encoded size."""
    errors = []
    for idx in clips:
        got = read_frames(encoded, idx).permute(0, 3, 1, 2).float()
        ref = read_frames(source, idx).permute(0, 3, 1, 2).float()
        ref = torch.nn.functional.interpolate(ref, size=got.shape[-2:], mode="bicubic", antialias=True).clamp(0, 255)
        errors.append(((got - ref) ** 2).mean().item())
    return float(10 * np.log10(255**2 / np.mean(errors)))


def bench_file(path: Path, short: int, args: argparse.Namespace, out_dir: Path) -> dict[str, float]:
    dest = out_dir / str(short) / f"{path.stem}.mp4"
    dest.unlink(missing_ok=True)
    start = time.process_time()
    data, signatures = encode(path, Encoding(short_side=short, crf=args.crf, threads=1))
    encode_s = time.process_time() - start
    worst = check(data, signatures, path)  # what reencode_videos.py checks before it writes a file
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    frames = len(signatures)
    n_src, n_out = count_frames(path), count_frames(dest)
    if not n_src == n_out == frames:
        raise SystemExit(f"{path.name}: frame counts differ: source {n_src}, re-encoded {n_out}")
    work = common.random_clip_indices(n_src, args.clips, seed=zlib.crc32(path.name.encode()))

    def candidate() -> None:
        for idx in work:
            read_frames(dest, idx)

    def reference() -> None:
        for idx in work:
            read_frames(path, idx)

    cmp = common.compare(candidate, reference, args.clips, args.rounds)
    src_size, out_size = path.stat().st_size, dest.stat().st_size
    quality = psnr(path, dest, work[:3])
    h, w, _ = common.frame_shape(dest)
    print(f"  short side {short} ({w}x{h}): frames {n_src} → {n_out} (equal), size {src_size / 1e3:,.0f} → "
          f"{out_size / 1e3:,.0f} kB ({out_size / src_size:.0%}), encode {encode_s:.1f} s CPU, PSNR {quality:.1f} dB, "
          f"thumbnail difference <= {worst:.2f} (tolerance {SIGNATURE_TOLERANCE:g}); "
          f"{cmp.rate('candidate'):.1f} vs {cmp.rate('reference'):.1f} clips/s, ratio {cmp.ratio:.2f}")
    return {"ratio": cmp.ratio, "clips_per_s": cmp.rate("candidate"), "source_clips_per_s": cmp.rate("reference"),
            "frames": n_src, "thumbnail_diff": worst, "source_bytes": src_size, "bytes": out_size, "psnr_db": quality, "encode_cpu_s": encode_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=16, help="clips per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--crf", type=int, default=Encoding().crf)
    args = parser.parse_args()
    common.header("re-encoded (gop 16, no B-frames, fastdecode) vs source: 16x4 random train clips, CPU time")
    common.one_worker_thread()
    out_dir = common.CACHE / "reencode"
    shutil.rmtree(out_dir, ignore_errors=True)
    kinetics_like = common.bench_video(gop=250)
    figures: dict[str, dict[str, float]] = {}
    for path in [kinetics_like] + common.shared_clips():
        print(f"{path.name}: {common.video_info(path)}")
        for short in TARGETS:
            figures[f"{path.name}/{short}"] = bench_file(path, short, args, out_dir)
    for short, target in TARGETS.items():
        real = [v["ratio"] for k, v in figures.items() if k.endswith(f"/{short}") and not k.startswith(kinetics_like.name)]
        where = f"; real clips median {common.median(real):.2f} (min {min(real):.2f})" if real else ""
        print(f"short side {short}: Kinetics-like ratio {figures[f'{kinetics_like.name}/{short}']['ratio']:.2f} "
              f"(target >= {target:g}){where}")
    common.finish("reencode", figures[f"{kinetics_like.name}/160"]["ratio"], TARGETS[160], figures)


if __name__ == "__main__":
    main()
