"""GPU figures in one JSON: training clips/s (bf16-mixed + channels_last_3d, ± torch.compile), vidrec's Lightning
step ÷ a bare PyTorch loop, vidrec's ÷ torchvision's ``r2plus1d_18``, 10×3-view test throughput, loader clips/s
with every core on H.264 files, and NVDEC (PyAV ``h264_cuvid``) decode fps against software H.264.

Training cases (clips of the models' papers): ``r2plus1d_18`` 16×112², ``r2plus1d_34`` 32×112², NL I3D-R50
(``i3d_nl_r50``) 32×224², random in-memory batches. Both sides use ``benchmarks/train_step.py``: the same
initial weights and batches, ``lightning_seconds`` vs ``bare_seconds``, wall time after
``torch.cuda.synchronize()``, the first step excluded. torch.compile runs for ``r2plus1d_18`` only unless
``--compile-all`` (each compile takes minutes). ``--cpu --tiny`` runs every part on CPU with tiny models and
inputs in seconds (the test of this script), in the precision ``trainer.precision=auto`` picks on that CPU (fp32
where bf16 conv3d gradients are unsound, docs/platforms.md); its figures are a smoke test, not measurements.

    python benchmarks/gpu/measure.py --out gpu.json             # one GPU (benchmarks/gpu/run.sh)
    python benchmarks/gpu/measure.py --cpu --tiny --out cpu.json
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common, train_step, dataloader

import common  # noqa: E402
import dataloader  # noqa: E402
import torch  # noqa: E402
import train_step  # noqa: E402

from vidrec.models import build_model  # noqa: E402
from vidrec.models.speed import apply_speed_options  # noqa: E402
from vidrec.precision import resolve_precision  # noqa: E402

# (model, frames, size, batch)
FULL = [("r2plus1d_18", 16, 112, 32), ("r2plus1d_34", 32, 112, 16), ("i3d_nl_r50", 32, 224, 8)]
TINY = [("r2plus1d_tiny", 4, 32, 2)]
PRECISION = "bf16-mixed"  # on the GPU


def mode_name(precision: str) -> str:
    return f"{'bf16' if precision.startswith('bf16') else 'fp32'}+cl3d"


def train_figures(cases, device: str, precision: str, steps: int, compile_backend: str, compile_all: bool) -> dict:
    """Lightning vs bare clips/s per case and mode (channels_last_3d; + torch.compile)."""
    clock = train_step.cuda_clock if device == "cuda" else time.process_time
    optimizer = functools.partial(torch.optim.SGD, lr=0.01, momentum=0.9)
    out = {}
    for name, frames, size, batch in cases:
        torch.manual_seed(0)
        initial = build_model(name, 8)
        batches = train_step.random_batches(batch, frames, size)
        modes = {mode_name(precision): {"channels_last": True}}
        if compile_all or name in ("r2plus1d_18", "r2plus1d_tiny"):
            modes[f"{mode_name(precision)}+compile"] = {"channels_last": True, "compile": {"backend": compile_backend}}
        for mode, options in modes.items():
            kw = {"device": device, "precision": precision, "options": options, "clock": clock}
            light = train_step.lightning_seconds(initial, batches, steps, optimizer, **kw)
            bare = train_step.bare_seconds(initial, batches, steps, optimizer, **kw)
            work = (steps - 2) * batch
            out[f"{name}/{mode}"] = {"input": [batch, 3, frames, size, size], "lightning_clips_per_s": work / light,
                                     "bare_clips_per_s": work / bare, "lightning_over_bare": bare / light}
            print(f"{name} {mode}: Lightning {work / light:.1f} clips/s, bare {work / bare:.1f}, ratio {bare / light:.3f}",
                  flush=True)
    return out


def torchvision_figures(frames: int, size: int, batch: int, device: str, precision: str, steps: int) -> dict:
    """vidrec's ``r2plus1d_18`` vs torchvision's in the same bare loop (``precision`` + channels_last_3d)."""
    try:
        from torchvision.models.video import r2plus1d_18
    except ImportError as e:
        return {"skipped": f"torchvision not importable: {e}"}
    clock = train_step.cuda_clock if device == "cuda" else time.process_time
    optimizer = functools.partial(torch.optim.SGD, lr=0.01, momentum=0.9)
    batches = train_step.random_batches(batch, frames, size)
    kw = {"device": device, "precision": precision, "options": {"channels_last": True}, "clock": clock}
    torch.manual_seed(0)
    ours = train_step.bare_seconds(build_model("r2plus1d_18", 8), batches, steps, optimizer, **kw)
    torch.manual_seed(0)
    theirs = train_step.bare_seconds(r2plus1d_18(num_classes=8), batches, steps, optimizer, **kw)
    work = (steps - 2) * batch
    print(f"r2plus1d_18 vidrec {work / ours:.1f} clips/s vs torchvision {work / theirs:.1f}: {theirs / ours:.3f}", flush=True)
    return {"input": [batch, 3, frames, size, size], "vidrec_clips_per_s": work / ours,
            "torchvision_clips_per_s": work / theirs, "vidrec_over_torchvision": theirs / ours}


def test_view_figures(name: str, frames: int, size: int, device: str, videos: int, video: Path) -> dict:
    """Videos/s of the 10 clips × 3 crops test: the network on prepared views, and end to end from the file."""
    from vidrec.data.spec import DataSpec
    from vidrec.inference import InferenceModel, video_views
    from vidrec.scoring import video_scores

    net = apply_speed_options(build_model(name, 400).eval().to(device), channels_last=True)
    model = InferenceModel(net, name, [str(i) for i in range(400)], source="random", spec=DataSpec.from_config({
        "clip": {"frames": frames, "sample_rate": 2}, "train": {"crop_size": size},
        "test": {"num_clips": 10, "num_crops": 3, "scale": round(size * 8 / 7), "crop_size": size, "views_per_batch": 30}}))
    clock = train_step.cuda_clock if device == "cuda" else time.perf_counter

    def run(from_file: bool) -> float:
        views = video_views(model, video)[0][None]
        start = clock()
        for _ in range(videos):
            if from_file:
                views = video_views(model, video)[0][None]
            with torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16):
                video_scores(net, model.network_input(views.to(device)), 30)
        return videos / (clock() - start)

    run(False)  # warm-up
    network, end_to_end = run(False), run(True)
    print(f"{name} 10x3 views: {network:.2f} videos/s (network), {end_to_end:.2f} (decode + transforms + network)", flush=True)
    return {"model": name, "views": [30, 3, frames, size, size], "videos_per_s_network": network,
            "videos_per_s_end_to_end": end_to_end, "video": common.video_info(video)}


def decode_fps(path: Path, codec: str) -> float:
    """Frames/s of decoding every frame of ``path`` with the PyAV decoder ``codec`` (no conversion to RGB)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = av.CodecContext.create(codec, "r")
        ctx.extradata = stream.codec_context.extradata
        n, start = 0, time.perf_counter()
        for packet in container.demux(stream):  # the last packet is the empty one that flushes the decoder
            n += len(ctx.decode(packet))
    return n / (time.perf_counter() - start)


def nvdec_figures(video: Path) -> dict:
    out = {"video": common.video_info(video), "h264_software_fps": decode_fps(video, "h264")}
    try:
        out["h264_cuvid_fps"] = decode_fps(video, "h264_cuvid")
    except Exception as e:  # no NVDEC, or an FFmpeg build without it
        out["h264_cuvid_error"] = f"{type(e).__name__}: {e}"
    print(f"decode: {out}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="run on CPU (with --tiny: the smoke test)")
    parser.add_argument("--tiny", action="store_true", help="tiny models, inputs and step counts")
    parser.add_argument("--compile-all", action="store_true", help="torch.compile every training case")
    parser.add_argument("--out", type=Path, default=Path("gpu_figures.json"))
    args = parser.parse_args()
    device = "cpu" if args.cpu else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: use --cpu (with --tiny for the smoke test)")
    train_step.quiet()
    common.header(f"GPU figures on {device}{' (tiny)' if args.tiny else ''}")
    steps = 4 if args.tiny else 12
    precision = PRECISION if device == "cuda" else resolve_precision({"precision": "auto"}, "cpu")[0]
    video = common.bench_video(seconds=2, width=160, height=120) if args.tiny else common.bench_video()
    figures = {
        "machine": common.machine(), "python": platform.python_version(),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "tiny": args.tiny,
        "precision": precision, "command": " ".join(sys.argv),
    }
    figures["train"] = train_figures(TINY if args.tiny else FULL, device, precision, steps,
                                     "eager" if args.tiny else "inductor", args.compile_all)
    figures["torchvision_r2plus1d_18"] = torchvision_figures(*((4, 32, 2) if args.tiny else (16, 112, 32)), device,
                                                             precision, steps)
    figures["test_10x3"] = test_view_figures(*(("r2plus1d_tiny", 4, 32) if args.tiny else ("r2plus1d_18", 16, 112)),
                                             device, 2 if args.tiny else 10, video)
    workers = 2 if args.tiny else dataloader.available_cpus()
    figures["loader"] = {"workers": workers, "clips_per_s": dataloader.loader_rate(dataloader.kinetics_like(), workers,
                                                                                   2 if args.tiny else 20),
                         "video": common.video_info(common.bench_video()), "clip": "16x4 frames, crop 112, batch 8"}
    print(f"loader: {figures['loader']['clips_per_s']:.1f} clips/s with {workers} workers", flush=True)
    figures["decode"] = nvdec_figures(video)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1, default=str))
    print(f"figures: {args.out}")


if __name__ == "__main__":
    main()
