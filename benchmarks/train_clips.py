"""Train-clip reading: vidrec's ``read_frames`` (as the dataset calls it) vs the raw decoder limit, same file, same run.

Work: random 16×4 training clips (vidrec's train sampler). Reference, the decoder limit: one PyAV open per
clip, a seek to the keyframe at or before the clip's first frame, decoding every frame from there to the
clip's last frame, and RGB conversion of the 16 wanted frames only (with a reused scaler, the fastest
conversion PyAV has); frames are identified by timestamp arithmetic, which is exact for these constant-
frame-rate files. Where timestamps cannot identify frames (HMDB51's packed-B-frame AVIs) the reference
decodes from the start and counts. Files: a 340×256 H.264 MP4 of 10 s at 30 fps, keyframe every 2 s, with
B-frames; and the real UCF101/HMDB51 clips in ../shared/clips when present. Figure: CPU time per clip.
The ratio printed last is the median over the files of the default backend's ratio (the worst is printed
before it: single files swing ±0.05 between runs on a shared machine).

    python benchmarks/train_clips.py [--clips 24] [--rounds 5]
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import av  # PyAV before decord (see vidrec.data.decoding)
import common
from av.video.reformatter import VideoReformatter
from common import Comparison

from vidrec.data.decoding import HAVE_DECORD, count_frames, read_frames

TARGET = 0.9


def raw_read(path: Path, indices: list[int]) -> list:
    """The decoder limit for one clip (see the module docstring)."""
    wanted = sorted(set(indices))
    reformatter = VideoReformatter()
    out = {}
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        step = 1 / (stream.average_rate * stream.time_base)
        start = stream.start_time or 0
        if container.format.name == "avi" and stream.codec_context.has_b_frames:  # packed B-frames: count
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    out[i] = reformatter.reformat(frame, format="rgb24").to_ndarray()
                if i >= wanted[-1]:
                    break
            return [out[i] for i in indices]
        by_pts = {start + round(i * step): i for i in wanted}
        last = max(by_pts)
        container.seek(start + round(wanted[0] * step), backward=True, any_frame=False, stream=stream)
        for frame in container.decode(stream):
            if frame.pts in by_pts:
                out[by_pts[frame.pts]] = reformatter.reformat(frame, format="rgb24").to_ndarray()
            if frame.pts >= last:
                break
    return [out[i] for i in indices]


def bench_file(path: Path, backends: list[str], clips: int, rounds: int) -> dict[str, Comparison]:
    n = count_frames(path)
    work = common.random_clip_indices(n, clips, seed=zlib.crc32(path.name.encode()))
    for idx in work[:3]:  # same pixels as the reference, or the comparison means nothing
        ref = raw_read(path, idx)
        for backend in backends:
            got = read_frames(path, idx, backend=backend).numpy()
            if backend == "auto" and not all((g == r).all() for g, r in zip(got, ref)):
                raise SystemExit(f"{path.name}: vidrec's PyAV read differs from the raw decode")

    def reference() -> None:
        for idx in work:
            raw_read(path, idx)

    results = {}
    for backend in backends:
        def candidate(backend: str = backend) -> None:
            for idx in work:
                read_frames(path, idx, backend=backend)

        results[backend] = common.compare(candidate, reference, clips, rounds)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24, help="clips per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    common.header("train clips: read_frames vs raw decoder limit (16x4 random clips, CPU time)")
    common.one_worker_thread()
    backends = ["auto"] + (["decord"] if HAVE_DECORD else [])
    files = [common.bench_video()] + common.shared_clips()
    ratios, figures = {}, {}
    for path in files:
        print(f"{path.name}: {common.video_info(path)}")
        for backend, cmp in bench_file(path, backends, args.clips, args.rounds).items():
            print(f"  {backend:>6}: {cmp.rate('candidate'):6.1f} clips/s  raw limit {cmp.rate('reference'):6.1f} clips/s"
                  f"  ratio {cmp.ratio:.2f}")
            figures[f"{path.name}/{backend}"] = {"clips_per_s": cmp.rate("candidate"),
                                                 "raw_clips_per_s": cmp.rate("reference"), "ratio": cmp.ratio}
            if backend == "auto":
                ratios[path.name] = cmp.ratio
    common.finish_per_file("train_clips", ratios, TARGET, figures)


if __name__ == "__main__":
    main()
