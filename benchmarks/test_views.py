"""Test-view reading: all 10 clips × 3 crops of one video vs one sequential decode of the video, same run.

Candidate: the read the test dataset does per video (``VideoDataset.load`` in test mode): one
``read_frames`` call for the 10×16 frame indices of vidrec's test sampler (all 30 views come from it; the 3
crops are cut from the same frames). Reference: one sequential PyAV decode of every frame of the video,
converting to RGB the frames the views use (a reused scaler) and stacking them in view order, the output
``read_frames`` gives: the cost of reading the video once. Target:
the views of a video cost no more than reading it once (decode once per video, not once per view). The
eval transform of the 30 views is timed too and printed as information: it is not decoding. CPU time,
one torch thread (as in a loader worker). The last line: the median over the files.

    python benchmarks/test_views.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import av  # PyAV before decord (see vidrec.data.decoding)
import common
import numpy as np
from av.video.reformatter import VideoReformatter

from vidrec.data.decoding import count_frames, read_frames
from vidrec.data.sampling import test_clip_indices
from vidrec.data.transforms import ClipTransform
from vidrec.models.registry import KINETICS_MEAN, KINETICS_STD

TARGET = 0.95
CLIPS, CROPS, FRAMES, RATE = 10, 3, 16, 4


def decode_all(path: Path, order: list[int]) -> np.ndarray:
    """The reference: decode every frame once, in order, converting the used ones; stack them in ``order``."""
    reformatter = VideoReformatter()
    used, rgb = set(order), {}
    with av.open(str(path), metadata_errors="ignore") as container:
        for i, frame in enumerate(container.decode(container.streams.video[0])):
            if i in used:
                rgb[i] = reformatter.reformat(frame, format="rgb24").to_ndarray()
    return np.stack([rgb[i] for i in order])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="videos read per round")
    args = parser.parse_args()
    common.header(f"test views: {CLIPS}x{CROPS} views of one video vs one sequential decode (CPU time)")
    common.one_worker_thread()
    transform = ClipTransform(KINETICS_MEAN, KINETICS_STD, crop_size=112, test_scale=128, num_crops=CROPS)
    ratios, figures = {}, {}
    for path in [common.bench_video()] + common.shared_clips():
        n = count_frames(path)
        idx = test_clip_indices(n, FRAMES, RATE, CLIPS)

        order = [int(i) % n for i in idx.flatten()]
        if not (decode_all(path, order) == read_frames(path, idx).numpy()).all():
            raise SystemExit(f"{path.name}: read_frames differs from the sequential decode")

        def views(path: Path = path, idx=idx) -> None:
            for _ in range(args.repeat):
                read_frames(path, idx)

        def decode_once(path: Path = path, order: list[int] = order) -> None:
            for _ in range(args.repeat):
                decode_all(path, order)

        cmp = common.compare(views, decode_once, args.repeat, args.rounds)
        frames = read_frames(path, idx).view(CLIPS, FRAMES, *common.frame_shape(path))
        t = time.process_time()
        for clip in frames:
            transform.eval(clip)
        transform_s = time.process_time() - t
        print(f"{path.name} ({n} frames, {common.video_info(path)}): read for {CLIPS * CROPS} views "
              f"{cmp.rate('candidate'):.1f} videos/s, one decode {cmp.rate('reference'):.1f} videos/s, "
              f"ratio {cmp.ratio:.2f}; eval transform of the 30 views {transform_s * 1000:.0f} ms")
        figures[path.name] = {"videos_per_s": cmp.rate("candidate"), "decode_once_per_s": cmp.rate("reference"),
                              "ratio": cmp.ratio, "eval_transform_ms": transform_s * 1000}
        ratios[path.name] = cmp.ratio
    common.finish_per_file("test_views", ratios, TARGET, figures)


if __name__ == "__main__":
    main()
