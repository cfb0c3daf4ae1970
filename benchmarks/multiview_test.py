"""The 30-view test of one video (10 clips × 3 crops, R(2+1)D-18, 16×112×112 views) on CPU: wall time and peak RSS.

Work: vidrec's test path for one video, as eval.py and predict.py run it — one decode of the 10 clips' frames,
short side to 128, 3 crops of 112, and the 30 views through the network in chunks of ``views_per_batch``,
mean of softmax. Reference: the network alone on the same 30 views as one batch (the least a 30-view test can
cost). Each configuration runs in a fresh process so its peak RSS (``ru_maxrss``) is its own; the process
that only builds the model gives the baseline RSS. Video: a 340×256 H.264 MP4 of 10 s at 30 fps rendered by
the synthetic generator. The ratio printed last is reference time / vidrec time with views_per_batch=30
(1.0: the decode, transforms and chunking cost nothing beyond the network).

    python benchmarks/multiview_test.py [--rounds 3] [--threads 0]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import common

MODEL, FRAMES, RATE, SIZE, SCALE, CLIPS, CROPS = "r2plus1d_18", 16, 4, 112, 128, 10, 3


def child(mode: str, views_per_batch: int, rounds: int, threads: int) -> dict[str, float]:
    """Run one configuration ``rounds`` times in this process; report median wall/CPU seconds and peak RSS."""
    import torch

    from vidrec.data.spec import DataSpec
    from vidrec.inference import InferenceModel, video_views
    from vidrec.scoring import video_scores

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    from vidrec.models import build_model

    net = build_model(MODEL, num_classes=400).eval()
    model = InferenceModel(net, MODEL, [str(i) for i in range(400)], source="random", spec=DataSpec.from_config({
        "clip": {"frames": FRAMES, "sample_rate": RATE}, "train": {"crop_size": SIZE},
        "test": {"num_clips": CLIPS, "num_crops": CROPS, "scale": SCALE, "crop_size": SIZE, "views_per_batch": views_per_batch}}))
    video = common.bench_video()
    walls, cpus = [], []
    views = model.network_input(video_views(model, video)[0]) if mode == "network" else None
    for _ in range(rounds if mode != "build" else 0):
        w, c = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            if mode == "network":  # the reference: 30 prepared views, one batch
                net(views).softmax(-1).mean(0)
            else:
                v, _ = video_views(model, video)
                video_scores(net, model.network_input(v[None]), views_per_batch)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall_s": common.median(walls) if walls else 0.0, "cpu_s": common.median(cpus) if cpus else 0.0,
            "peak_rss_mib": rss_mib, "views": CLIPS * CROPS}


def spawn(mode: str, views_per_batch: int, rounds: int, threads: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--views-per-batch", str(views_per_batch),
                          "--rounds", str(rounds), "--threads", str(threads)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--child", choices=["build", "vidrec", "network"])
    parser.add_argument("--views-per-batch", type=int, default=30)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.views_per_batch, args.rounds, args.threads)))
        return
    common.header(f"30-view test of one video: {MODEL}, {CLIPS} clips × {CROPS} crops of {FRAMES}×{SIZE}×{SIZE} (CPU)")
    video = common.bench_video()
    print(f"video: {video.name} ({common.video_info(video)})")
    base = spawn("build", 30, 0, args.threads)
    print(f"model built, no inference: peak RSS {base['peak_rss_mib']:.0f} MiB")
    figures: dict[str, object] = {"baseline_rss_mib": base["peak_rss_mib"]}
    for vpb in (30, 10, 5):
        r = spawn("vidrec", vpb, args.rounds, args.threads)
        figures[f"views_per_batch={vpb}"] = r
        print(f"vidrec views_per_batch={vpb:2d}: wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s per video, "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB")
    ref = spawn("network", 30, args.rounds, args.threads)
    figures["network_only"] = ref
    print(f"network only, 30 views in one batch: wall {ref['wall_s']:.2f} s, CPU {ref['cpu_s']:.2f} s")
    ratio = ref["cpu_s"] / figures["views_per_batch=30"]["cpu_s"]  # type: ignore[index]
    common.finish("multiview_test", ratio, 0.8, figures)


if __name__ == "__main__":
    main()
